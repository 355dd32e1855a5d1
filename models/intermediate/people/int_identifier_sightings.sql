{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='append',
    )
}}
{#
    Every (cio_id, customer_id, email) combination each message event showed, at the
    moment it happened, from every source copy (a Segment copy may carry what the webhook
    copy lacks). Narrow and independent of as_of, so identity is resolved from here without
    parsing the raw payloads again: each run appends only what was loaded since the last.
    A combination seen again later is a new row; readers take the latest one up to as_of.
#}

with

message_events as (

    select
        cio_id,
        customer_id,
        email,
        occurred_at,
        loaded_at

    from {{ ref('int_message_events_unioned') }}

    where
        coalesce(cio_id, customer_id, email) is not null
    {% if is_incremental() %}
        and loaded_at > (
            select
                coalesce(
                    max(last_loaded_at),
                    cast('1900-01-01' as {{ dbt.type_timestamp() }})
                )
            from {{ this }}
        )
    {% endif %}

),

sightings as (

    select
        cio_id,
        customer_id,
        email,
        occurred_at as observed_at,
        max(loaded_at) as last_loaded_at

    from message_events

    group by 1, 2, 3, 4

)

select * from sightings
