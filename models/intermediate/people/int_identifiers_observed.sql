{{ config(materialized='table') }}
{#
    Every (cio_id, customer_id, email) combination seen up to as_of, from message events and
    orders, with its latest sighting. Identity is resolved from this alone, so `--vars as_of`
    replays it exactly; only each combination's latest sighting decides which id is the most
    recent, so one row per combination loses nothing.
    It reads every source copy of every event (a Segment copy may carry an id the webhook
    copy lacks) from the parsed union: grouping its three id columns is a few seconds at a
    brand's size, while a table of sightings kept beside it held nearly a row per event.
#}

with

message_events as (

    select
        cio_id,
        customer_id,
        email,
        occurred_at as observed_at

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
        observed_at

    from message_events

    union all

    select
        cast(null as {{ dbt.type_string() }}) as cio_id,
        customer_id,
        email,
        ordered_at as observed_at

    from orders

),

latest_per_combination as (

    select
        cio_id,
        customer_id,
        email,
        max(observed_at) as observed_at

    from observations

    where
        observed_at <= {{ as_of_timestamp() }}
        and coalesce(cio_id, customer_id, email) is not null

    group by 1, 2, 3

)

select * from latest_per_combination
