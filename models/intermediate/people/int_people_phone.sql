{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='changed_rows',
        unique_key='person_id',
        on_schema_change='sync_all_columns',
    )
}}
{#
    One row per person with a known phone as of as_of: the phone number of their latest
    SMS event (Customer.io puts the recipient's MSISDN on SMS events). People change
    numbers, so the latest event wins; ties go to the larger number, so a rerun picks
    the same one. The latest time per person, then that time's events (a grouping and a
    join): row_number() over every SMS event sorted them all, twice the time (1.5 M events
    at a year of a 200k-customer brand: 0.22 s against 0.11 s).
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

latest_event as (

    select
        person_id,
        max(occurred_at) as latest_occurred_at

    from sms_events

    group by 1

),

latest_phone as (

    select
        sms_events.person_id,
        max(sms_events.phone) as phone

    from sms_events

    inner join latest_event
        on
            sms_events.person_id = latest_event.person_id
            and sms_events.occurred_at = latest_event.latest_occurred_at

    group by 1

)

select * from latest_phone
