{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='changed_rows',
        unique_key='order_id',
        on_schema_change='sync_all_columns',
    )
}}
with

orders as (

    select * from {{ ref('int_orders_resolved') }}

),

final as (

    select
        ---------- ids
        order_id,
        customer_id,

        ---------- strings
        email,
        order_status,
        currency,

        ---------- numerics
        total_cents,

        ---------- booleans
        is_cancelled,
        is_refunded,

        ---------- timestamps
        ordered_at,
        updated_at,

        ---------- computed ids
        person_id

    from orders

)

select * from final
