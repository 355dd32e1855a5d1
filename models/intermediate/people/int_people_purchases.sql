{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='changed_rows',
        unique_key='person_id',
        on_schema_change='sync_all_columns',
    )
}}
{#
    One row per person who ordered up to as_of: how many orders, the last of any status, and
    the last purchase. Cancelled orders are not purchases; refunded ones are (they bought).
#}

with

orders as (

    select * from {{ ref('int_orders_resolved') }}

    where
        person_id is not null
        and ordered_at <= {{ as_of_timestamp() }}

),

summarised as (

    select
        person_id,
        count(*) as count_orders,
        max(ordered_at) as last_order_at,
        max(case when not is_cancelled then ordered_at end) as last_purchase_at

    from orders

    group by 1

)

select * from summarised
