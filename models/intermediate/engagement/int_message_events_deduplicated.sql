{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        unique_key='message_event_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}
{#
    One row per distinct message event across sources, whatever as_of is: the table holds
    every event loaded, and readers filter by time. Incremental by arrival, not by event
    time: each run takes exactly the rows loaded since the newest row it already holds and
    merges them by key, so a late event (old occurred_at, new loaded_at) lands, and a
    backfill is processed once, by the build after it, never again.
    Spark has no delete+insert, and insert_overwrite would drop the rest of a partition
    that a late event touches, so on Spark this model is rebuilt in full each run.
#}

with

message_events as (

    select * from {{ ref('int_message_events_unioned') }}

    {% if is_incremental() %}
        {# An empty table (built before any load) must not stop every later run. #}
        where loaded_at > (
            select
                coalesce(
                    max(loaded_at), cast('1900-01-01' as {{ dbt.type_timestamp() }})
                )
            from {{ this }}
        )
    {% endif %}

),

keyed as (

    select
        {# The same delivery + metric + second seen through two sources is one event. #}
        {{ generate_surrogate_key([
            "coalesce(delivery_id, customer_id, email, cio_id)",
            "channel",
            "metric",
            dbt.date_trunc('second', 'occurred_at'),
        ]) }} as message_event_id,
        *

    from message_events

),

{% if is_incremental() %}
    already_landed as (

        select
            message_event_id,
            source_event_id,
            source_priority

        from {{ this }}

    ),

{% endif %}
ranked as (

    select
        keyed.*,
        row_number() over (
            partition by keyed.message_event_id
            order by keyed.source_priority, keyed.source_event_id
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

final as (

    select
        ---------- ids
        message_event_id,
        source_event_id,
        customer_id,
        cio_id,
        delivery_id,
        campaign_id,
        broadcast_id,
        newsletter_id,
        action_id,
        journey_id,
        transactional_message_id,

        ---------- strings
        source_system,
        email,
        channel,
        metric,
        case
            when campaign_id is not null then 'campaign'
            when broadcast_id is not null then 'broadcast'
            when newsletter_id is not null then 'newsletter'
            when transactional_message_id is not null then 'transactional'
        end as parent_type,
        link_url,
        failure_message,
        phone,

        ---------- numerics
        source_priority,

        ---------- booleans
        {# Apple MPP and Gmail prefetch open the pixel; link scanners click. #}
        {#- Which open flags mean "machine" is var machine_open_flags (macros/engagement/
            machine_open.sql). The flag is stored, so changing that var needs
            `dbt build --full-refresh --select int_message_events_deduplicated+`. #}
        case
            when metric = 'opened'
                then {{ machine_open({
                    'prefetched': 'is_prefetched', 'proxied': 'is_proxied'
                }) }}
            when metric = 'clicked' then is_machine_click
        end as is_machine,
        is_prefetched,
        is_proxied,

        ---------- timestamps
        occurred_at,
        loaded_at

    from ranked

    where rank_within_event = 1

)

select * from final
