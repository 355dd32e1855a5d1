{{ config(materialized='view') }}
{#
    Every distinct message event with the person it belongs to as of as_of: the columns the
    people models and the audience macros filter on. A view: the person is stored on the
    deduplicated rows (int_message_events_deduplicated resolves the events it writes and
    re-resolves those whose identifiers changed), so the events are written once, not
    copied into a table of their own. Readers filter occurred_at <= as_of.
    deduplicated_at (when the dedupe last wrote the row) and previous_person_id (whom the
    row belonged to before) let the per-person summaries rebuild only the people whose
    events changed (macros/people/summarised_per_person.sql).
#}

with

message_events as (

    select * from {{ ref('int_message_events_deduplicated') }}

),

resolved as (

    select
        message_event_id,
        person_id,
        channel,
        metric,
        campaign_id,
        broadcast_id,
        newsletter_id,
        action_id,
        journey_id,
        transactional_message_id,
        link_url,
        phone,
        is_machine,
        occurred_at,
        loaded_at,
        deduplicated_at,
        previous_person_id

    from message_events

)

select * from resolved
