{#
    Every (cio_id, customer_id, email) combination seen up to as_of, from message events and
    orders. Identity is resolved from this alone, so `--vars as_of` replays it exactly.
#}

with

message_events as (

    select
        cio_id,
        customer_id,
        email,
        occurred_at

    from {{ ref('int_message_events_unioned') }}

),

orders as (

    select
        customer_id,
        email,
        ordered_at

    from {{ ref('stg_shop__orders') }}

),

observations as (

    select
        cio_id,
        customer_id,
        email,
        occurred_at as observed_at

    from message_events

    union all

    select
        cast(null as {{ dbt.type_string() }}) as cio_id,
        customer_id,
        email,
        ordered_at as observed_at

    from orders

),

as_of_filtered as (

    select
        cio_id,
        customer_id,
        email,
        observed_at

    from observations

    where
        observed_at <= {{ as_of_timestamp() }}
        and coalesce(cio_id, customer_id, email) is not null

)

select * from as_of_filtered
