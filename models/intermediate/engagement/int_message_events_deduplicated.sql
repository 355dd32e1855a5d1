{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        unique_key='message_event_id',
        incremental_strategy='delete_insert_from_second',
        key_second_column='occurred_at',
        on_schema_change='append_new_columns',
    )
}}
{#
    One row per distinct message event across sources, with the person it belongs to as of
    as_of (by cio_id first, then customer_id, then lower-cased email), whatever as_of is:
    the table holds every event loaded, and readers filter by time.

    Incremental by arrival, not by event time: each run takes exactly the rows loaded since
    the newest row it already holds and merges them by key, so a late event (old
    occurred_at, new loaded_at) lands, and a backfill is processed once, by the build after
    it, never again. The same run re-resolves the events it already holds whose identifiers
    changed person since its last run (int_identifiers_resolved stamps them with
    changed_at), so the result is what a full refresh gives for the same as_of.

    previous_person_id is the person a held event had before this run rewrote it:
    re-resolved, or replaced by a better copy (null for an event written for the first
    time). With deduplicated_at it tells the per-person summaries whose events changed
    (macros/people/summarised_per_person.sql): the people who gained events and those
    who lost one.

    The person is stored here, on the deduplicated rows, rather than in a table of its own:
    that was a third copy of every event (after the union and this one), and writing
    millions of rows is the largest cost of a build at a brand's size.
    int_message_events_resolved is a view of the columns the people models and the audience
    macros read.

    The rows are written by delete+insert on the key, through our strategy
    delete_insert_from_second: its delete looks the written keys up only among the held
    rows from the earliest second written on (a key includes its second), not among every
    key held (macros/incremental/get_incremental_delete_insert_from_second_sql.sql).

    Spark has no delete+insert, and insert_overwrite would drop the rest of a partition
    that a late event touches, so on Spark this model is rebuilt in full each run.
#}

{#
    Two CTEs below each read the union with the newest_held filter rather than
    share one CTE: DuckDB materializes a CTE read twice, which would copy every wide row
    once more. (arrivals is read twice only by an incremental run, which holds the new
    rows alone.)
#}

{#- What a held row carries into a rewrite (all but the person and the stamp). -#}
{%- set event_columns = [
    'message_event_id', 'source_event_id', 'customer_id', 'cio_id', 'delivery_id',
    'campaign_id', 'broadcast_id', 'newsletter_id', 'action_id', 'journey_id',
    'transactional_message_id', 'source_system', 'email', 'channel', 'metric',
    'parent_type', 'link_url', 'failure_message', 'phone', 'source_priority', 'is_machine',
    'is_prefetched', 'is_proxied', 'occurred_at', 'loaded_at',
] -%}

{#-
    A table written before the person was stored here has no person_id: its first run
    resolves every held row once (dbt adds the column, append_new_columns).
-#}
{%- set resolve_every_held_row = (
    is_incremental() and not relation_has_column(this, 'person_id')
) -%}
{%- set no_person = 'cast(null as ' ~ dbt.type_string() ~ ')' -%}
{#- How the held rows found below are fetched whole (macros/sql/row_locator.sql). -#}
{%- set held_row = row_locator('message_event_id') -%}
{#- The watermark, looked up once: three CTEs below filter by it, and each lookup is a
    query of its own (macros/time/newest_loaded_at_held.sql). -#}
{%- set newest_held = newest_loaded_at_held() if is_incremental() else none -%}

with

keyed as (

    {#
        Only the columns that decide which copy wins. Ranking the narrow rows and joining
        the winners back costs half of ranking whole rows (the window operator carries
        every column it orders).
    #}
    select
        {# The same delivery + metric + second seen through two sources is one event. #}
        {{ generate_surrogate_key([
            "coalesce(delivery_id, customer_id, email, cio_id)",
            "channel",
            "metric",
            dbt.date_trunc('second', 'occurred_at'),
        ]) }} as message_event_id,
        source_system,
        source_event_id,
        source_priority,
        loaded_at

    from {{ ref('int_message_events_unioned') }}

    {% if is_incremental() %}
        where loaded_at > {{ newest_held }}
    {% endif %}

),

{% if is_incremental() %}
    already_landed as (

        select
            message_event_id,
            source_event_id,
            source_priority,
            {{ no_person if resolve_every_held_row else 'person_id' }} as person_id

        from {{ this }}

        {# The held rows that can share a key with an arrival: the recent ones. #}
        where {{ occurred_since_earliest_arrival(
            'occurred_at', ref('int_message_events_unioned'), newest_held
        ) }}

    ),

{% endif %}
ranked as (

    select
        keyed.*,
        {#- Whose event a copy written now replaces (see previous_person_id). #}
        {{ 'already_landed.person_id' if is_incremental() else no_person }}
            as replaced_person_id,
        {#
            The best source, then the smallest source id; an App API delivery fetched
            again (same source id) keeps its latest copy, as an incremental run does.
        #}
        row_number() over (
            partition by keyed.message_event_id
            order by
                keyed.source_priority asc,
                keyed.source_event_id asc,
                keyed.loaded_at desc
        ) as rank_within_event

    from keyed

    {% if is_incremental() %}
        left join already_landed
            on keyed.message_event_id = already_landed.message_event_id

        {#
            Keep whichever copy a full refresh would keep: the best source, then the
            smallest source id, whether it landed earlier or arrives now.
        #}
        where
            already_landed.message_event_id is null
            or keyed.source_priority < already_landed.source_priority
            or (
                keyed.source_priority = already_landed.source_priority
                and keyed.source_event_id <= already_landed.source_event_id
            )
    {% endif %}

),

winners as (

    select
        message_event_id,
        source_system,
        source_event_id,
        loaded_at,
        replaced_person_id

    from ranked

    where rank_within_event = 1

),

message_events as (

    select * from {{ ref('int_message_events_unioned') }}

    {% if is_incremental() %}
        where loaded_at > {{ newest_held }}
    {% endif %}

),

arrivals as (

    select
        ---------- ids
        winners.message_event_id,
        message_events.source_event_id,
        message_events.customer_id,
        message_events.cio_id,
        message_events.delivery_id,
        message_events.campaign_id,
        message_events.broadcast_id,
        message_events.newsletter_id,
        message_events.action_id,
        message_events.journey_id,
        message_events.transactional_message_id,

        ---------- strings
        message_events.source_system,
        message_events.email,
        message_events.channel,
        message_events.metric,
        case
            when message_events.campaign_id is not null then 'campaign'
            when message_events.broadcast_id is not null then 'broadcast'
            when message_events.newsletter_id is not null then 'newsletter'
            when message_events.transactional_message_id is not null
                then 'transactional'
        end as parent_type,
        message_events.link_url,
        message_events.failure_message,
        message_events.phone,

        ---------- numerics
        message_events.source_priority,

        ---------- booleans
        {# Apple MPP and Gmail prefetch open the pixel; link scanners click. #}
        {#- Which open flags mean "machine" is var machine_open_flags (macros/engagement/
            machine_open.sql). The flag is stored, so changing that var needs
            `dbt build --full-refresh --select int_message_events_deduplicated+`. #}
        case
            when message_events.metric = 'opened'
                then {{ machine_open({
                    'prefetched': 'message_events.is_prefetched',
                    'proxied': 'message_events.is_proxied',
                }) }}
            when message_events.metric = 'clicked' then message_events.is_machine_click
        end as is_machine,
        message_events.is_prefetched,
        message_events.is_proxied,

        ---------- timestamps
        message_events.occurred_at,
        message_events.loaded_at,

        {#
            The person of the held copy this one replaces, read with the copies already
            landed (recent blocks only): the per-person summaries rebuild that person,
            whose event this was (the new copy may resolve to someone else, or differ,
            such as a machine flag the better source sets).
        #}
        winners.replaced_person_id as previous_person_id

    {# One source row per (system, source id, load): the raw tables' keys. #}
    from message_events

    inner join winners
        on
            message_events.source_system = winners.source_system
            and message_events.source_event_id = winners.source_event_id
            and message_events.loaded_at = winners.loaded_at

),

{% if is_incremental() %}
    last_run as (

        {# Identifiers changed by that run were re-resolved by it. #}
        select
            coalesce(
                max(deduplicated_at), cast('1900-01-01' as {{ dbt.type_timestamp() }})
            ) as last_written_at

        from {{ this }}

    ),

    changed_identifiers as (

        select
            identifier_type,
            identifier_value

        from {{ ref('int_identifiers_resolved') }}

        where changed_at > (select last_written_at from last_run)

    ),

    {%- if not resolve_every_held_row %}
    {#
        The held events carrying a changed identifier, found by one narrow join per
        identifier type: the changed identifiers are few (a tick's new and merged
        people), and joining them to one column at a time reads that column alone,
        where filtering the wide rows by three IN lists read every column of every held
        event (2-3 s of a daily tick at a year of 200k people). They are returned as
        row locators, so that held_to_resolve fetches those rows alone.
    #}
    held_with_changed_identifier as (

        {%- for identifier in ['cio_id', 'customer_id', 'email'] %}
        select held.{{ held_row }} as held_row

        from {{ this }} as held

        inner join changed_identifiers
            on
                changed_identifiers.identifier_type = '{{ identifier }}'
                and held.{{ identifier }} = changed_identifiers.identifier_value
        {%- if not loop.last %}

        union
        {% endif %}
        {%- endfor %}

    ),
    {%- endif %}

    {#
        Held events whose person may have changed, unless this run writes a new copy of
        them (the rows it writes, not the winners: a winner at or before the watermark
        never joins back, and must not stop its held row's re-resolution).
    #}
    held_to_resolve as (

        select
            {%- for column in event_columns %}
            held.{{ column }},
            {%- endfor %}
            {{ no_person if resolve_every_held_row else 'held.person_id' }}
                as previous_person_id

        from {{ this }} as held

        {%- if not resolve_every_held_row %}

        inner join held_with_changed_identifier
            on held.{{ held_row }} = held_with_changed_identifier.held_row
        {%- endif %}

        left join arrivals
            on held.message_event_id = arrivals.message_event_id

        where arrivals.message_event_id is null

    ),

{% endif %}
to_resolve as (

    select {{ event_columns | join(', ') }}, previous_person_id from arrivals

    {% if is_incremental() %}
        union all

        select {{ event_columns | join(', ') }}, previous_person_id from held_to_resolve
    {% endif %}

),

{# cio_id first (Customer.io's own), then customer_id, then the lower-cased email. #}
resolved as (

    {{ person_by_identifiers(
        'to_resolve',
        ['cio_id', 'customer_id', 'email'],
        ref('int_identifiers_resolved'),
    ) }}

),

final as (

    select
        *,
        {# When this row was written; the uniqueness test checks what changed since. #}
        {{ run_started_timestamp() }} as deduplicated_at

    from resolved

)

select * from final
