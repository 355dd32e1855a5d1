{{ config(materialized='table') }}
{#
    One row per person with a known phone as of as_of: the phone number of their latest
    SMS event (Customer.io puts the recipient's MSISDN on SMS events). People change
    numbers, so the latest event wins; ties go to the larger number, so a rerun picks
    the same one.
#}

with

sms_events as (

    select
        person_id,
        phone,
        occurred_at

    from {{ ref('int_message_events_resolved') }}

    where
        person_id is not null
        and phone is not null
        and phone <> ''
        and occurred_at <= {{ as_of_timestamp() }}

),

ranked as (

    select
        person_id,
        phone,
        row_number() over (
            partition by person_id
            order by occurred_at desc, phone desc
        ) as recency_rank

    from sms_events

),

latest_phone as (

    select
        person_id,
        phone

    from ranked

    where recency_rank = 1

)

select * from latest_phone
