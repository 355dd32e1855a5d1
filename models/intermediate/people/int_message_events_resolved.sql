{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        unique_key='message_event_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
    )
}}
{#
    Every distinct message event with the person it belongs to as of as_of: by cio_id first,
    then customer_id, then lower-cased email. Readers filter occurred_at <= as_of; the table
    holds every event so that a run costs what changed, not the history. Each run resolves
    (a) the events loaded since the last run and (b) the events of identifiers whose person
    changed since the last run (int_identifiers_resolved stamps them), so the result is what
    a full refresh gives for the same as_of.
    Narrow on purpose: only what the people models and the audience macros filter on. It is
    a third copy of every event (after the union and the dedupe), so each column costs a
    rewrite of millions of rows; identifiers, source ids and failure messages stay in
    int_message_events_deduplicated (fct_message_events), joined by message_event_id.
#}

with

{% if is_incremental() %}
    last_run as (

        select
            coalesce(
                max(loaded_at), cast('1900-01-01' as {{ dbt.type_timestamp() }})
            ) as last_loaded_at,
            coalesce(
                max(resolved_at), cast('1900-01-01' as {{ dbt.type_timestamp() }})
            ) as last_resolved_at

        from {{ this }}

    ),

    changed_identifiers as (

        select
            identifier_type,
            identifier_value

        from {{ ref('int_identifiers_resolved') }}

        where changed_at > (select last_resolved_at from last_run)

    ),

{% endif %}
message_events as (

    select * from {{ ref('int_message_events_deduplicated') }}

    {% if is_incremental() %}
        where
            loaded_at > (select last_loaded_at from last_run)
            or cio_id in (
                select identifier_value from changed_identifiers
                where identifier_type = 'cio_id'
            )
            or customer_id in (
                select identifier_value from changed_identifiers
                where identifier_type = 'customer_id'
            )
            or email in (
                select identifier_value from changed_identifiers
                where identifier_type = 'email'
            )
    {% endif %}

),

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}

    where person_id is not null

),

by_cio_id as (

    select
        identifier_value,
        person_id

    from identifiers

    where identifier_type = 'cio_id'

),

by_customer_id as (

    select
        identifier_value,
        person_id

    from identifiers

    where identifier_type = 'customer_id'

),

by_email as (

    select
        identifier_value,
        person_id

    from identifiers

    where identifier_type = 'email'

),

resolved as (

    select
        message_events.message_event_id,
        message_events.channel,
        message_events.metric,
        message_events.campaign_id,
        message_events.broadcast_id,
        message_events.newsletter_id,
        message_events.action_id,
        message_events.journey_id,
        message_events.transactional_message_id,
        message_events.link_url,
        message_events.phone,
        message_events.is_machine,
        message_events.occurred_at,
        message_events.loaded_at,
        coalesce(
            by_cio_id.person_id, by_customer_id.person_id, by_email.person_id
        ) as person_id,
        {{ run_started_timestamp() }} as resolved_at

    from message_events

    left join by_cio_id
        on message_events.cio_id = by_cio_id.identifier_value

    left join by_customer_id
        on message_events.customer_id = by_customer_id.identifier_value

    left join by_email
        on message_events.email = by_email.identifier_value

)

select * from resolved
