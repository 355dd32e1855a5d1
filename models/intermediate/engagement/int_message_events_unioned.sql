{{ config(materialized='view') }}
{#
    Every message event from every source in one shape, before cross-source dedupe.
    source_priority decides which copy survives when the same event arrives twice:
    webhooks carry the most detail (machine flags, link URLs), Segment copies next, and the
    App API's first-touch summaries last.

    A view: the loaders copy the payload values the staging models read into columns as
    each event lands, so nothing here parses JSON, and its readers (the dedupe and the
    identity sightings, both incremental by loaded_at) read only the rows that arrived
    since their last run, the filter reaching the raw tables through the staging views.
    Writing this union as a table of its own, as before, cost a third of a full build at
    a brand's size.
#}

with

webhook_events as (

    select * from {{ ref('stg_customerio__webhook_events') }}

),

segment_tracks as (

    select * from {{ ref('stg_customerio_segment__tracks') }}

),

segment_event_names as (

    select * from {{ ref('segment_message_event_names') }}

),

webhook_events_shaped as (

    select
        'webhook' as source_system,
        event_id as source_event_id,
        customer_id,
        cio_id,
        email,
        object_type as channel,
        metric,
        delivery_id,
        campaign_id,
        broadcast_id,
        newsletter_id,
        action_id,
        journey_id,
        transactional_message_id,
        link_url,
        failure_message,
        {# On SMS the recipient is the phone number (the MSISDN) the message went to. #}
        case when object_type = 'sms' then trim(recipient) end as phone,
        is_prefetched,
        is_proxied,
        is_machine_click,
        occurred_at,
        loaded_at,
        1 as source_priority

    from webhook_events

),

segment_tracks_shaped as (

    select
        'segment' as source_system,
        segment_tracks.message_id as source_event_id,
        segment_tracks.customer_id,
        cast(null as {{ dbt.type_string() }}) as cio_id,
        segment_tracks.email,
        segment_event_names.channel,
        segment_event_names.metric,
        segment_tracks.delivery_id,
        segment_tracks.campaign_id,
        segment_tracks.broadcast_id,
        segment_tracks.newsletter_id,
        segment_tracks.action_id,
        segment_tracks.journey_id,
        segment_tracks.transactional_message_id,
        segment_tracks.link_url,
        segment_tracks.failure_message,
        case
            when segment_event_names.channel = 'sms' then trim(segment_tracks.recipient)
        end as phone,
        segment_tracks.is_prefetched,
        segment_tracks.is_proxied,
        segment_tracks.is_machine_click,
        segment_tracks.occurred_at,
        segment_tracks.loaded_at,
        2 as source_priority

    {# Track calls that are not message metrics (orders, page views) are not ours. #}
    from segment_tracks

    inner join segment_event_names
        on segment_tracks.event_name = segment_event_names.event_name

),

{% for metric in var('api_message_metrics') %}
    api_{{ metric }}_events as (

        select
            'app_api' as source_system,
            {{ dbt.concat(["delivery_id", "':" ~ metric ~ "'"]) }} as source_event_id,
            customer_id,
            cio_id,
            email,
            channel,
            '{{ metric }}' as metric,
            delivery_id,
            campaign_id,
            broadcast_id,
            newsletter_id,
            action_id,
            cast(null as {{ dbt.type_string() }}) as journey_id,
            cast(null as {{ dbt.type_string() }}) as transactional_message_id,
            cast(null as {{ dbt.type_string() }}) as link_url,
            cast(null as {{ dbt.type_string() }}) as failure_message,
            cast(null as {{ dbt.type_string() }}) as phone,
            cast(null as {{ dbt.type_boolean() }}) as is_prefetched,
            cast(null as {{ dbt.type_boolean() }}) as is_proxied,
            cast(null as {{ dbt.type_boolean() }}) as is_machine_click,
            {{ epoch_to_timestamp(metric ~ '_epoch') }} as occurred_at,
            loaded_at,
            3 as source_priority

        {#
            The staging view itself in each metric's branch, not an import CTE shared
            by all of them: DuckDB and PostgreSQL materialize a CTE read more than
            once, whole, so the readers' loaded_at filter would no longer reach the
            raw table, and every build would parse the JSON of every App API message
            ever loaded. Read here, each branch reads only the rows that arrived.
        #}
        from {{ ref('stg_customerio__api_messages') }}

        where {{ metric }}_epoch is not null

    ),

{% endfor %}
unioned as (

    select * from webhook_events_shaped

    union all

    select * from segment_tracks_shaped

    {% for metric in var('api_message_metrics') %}
        union all

        select * from api_{{ metric }}_events
    {% endfor %}

)

select * from unioned
