{#
    An absence signal: people who were messaged on `channels` for at least `days` days and
    received something in the last `days` days, but made no human open or click on those
    channels in that time. signal_at is their latest delivery (the evidence they are still
    reachable); count_signals the deliveries in the window.

    channels must be among var('engagement_channels'): "messaged for at least `days` days"
    is each person's first message event per channel, kept by int_people_engagement, so
    this query reads only the window's events instead of grouping the whole history.
#}
{% macro audience_absence(channels, days, received_metrics=['delivered']) -%}
    {%- do audience_number(days, 'days', 1) -%}
    {%- if channels is string or channels is not iterable or channels | length == 0 -%}
        {{ audience_argument_error('channels', 'a non-empty list', channels) }}
        {#- At parse time the error above renders nothing; the SQL below must still render. -#}
        {%- set channels = ['email'] -%}
    {%- endif -%}
    {%- for channel in channels -%}
        {%- do audience_one_of(channel, 'channels', var('engagement_channels')) -%}
    {%- endfor -%}
    {%- set as_of = as_of_timestamp() -%}
    {%- set window_start = dbt.dateadd('day', -1 * days, as_of) -%}
    select
        message_events.person_id,
        max(
            case
                when message_events.metric in ({{ audience_sql_list(received_metrics) }})
                    then message_events.occurred_at
            end
        ) as signal_at,
        count(
            case
                when message_events.metric in ({{ audience_sql_list(received_metrics) }})
                    then 1
            end
        ) as count_signals

    from {{ ref('int_message_events_resolved') }} as message_events

    inner join {{ ref('int_people_engagement') }} as people_engagement
        on message_events.person_id = people_engagement.person_id

    where
        message_events.occurred_at <= {{ as_of }}
        and message_events.occurred_at >= {{ window_start }}
        and message_events.channel in ({{ audience_sql_list(channels) }})
        {#- Messaged on one of the channels at or before the window's start. #}
        and (
            {%- for channel in channels %}
            {{ 'or ' if not loop.first }}people_engagement.first_{{ channel }}_message_event_at
                <= {{ window_start }}
            {%- endfor %}
        )

    group by 1

    having
        count(
            case
                when message_events.metric in ({{ audience_sql_list(received_metrics) }})
                    then 1
            end
        ) > 0
        and count(
            case
                when
                    message_events.metric in ('opened', 'clicked')
                    and coalesce(message_events.is_machine, false) = false
                    then 1
            end
        ) = 0
{%- endmacro %}
