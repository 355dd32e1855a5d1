{#
    An absence signal: people who were messaged on `channels` for at least `days` days and
    received something in the last `days` days, but made no human open or click on those
    channels in that time. signal_at is their latest delivery (the evidence they are still
    reachable); count_signals the deliveries in the window.
#}
{% macro audience_absence(channels, days, received_metrics=['delivered']) -%}
    {%- do audience_number(days, 'days', 1) -%}
    {%- set as_of = as_of_timestamp() -%}
    {%- set window_start = dbt.dateadd('day', -1 * days, as_of) -%}
    select
        person_id,
        max(
            case
                when
                    metric in ({{ audience_sql_list(received_metrics) }})
                    and occurred_at >= {{ window_start }}
                    then occurred_at
            end
        ) as signal_at,
        count(
            case
                when
                    metric in ({{ audience_sql_list(received_metrics) }})
                    and occurred_at >= {{ window_start }}
                    then 1
            end
        ) as count_signals

    from {{ ref('int_message_events_resolved') }}

    where
        person_id is not null
        and occurred_at <= {{ as_of }}
        and channel in ({{ audience_sql_list(channels) }})

    group by 1

    having
        min(occurred_at) <= {{ window_start }}
        and count(
            case
                when
                    metric in ({{ audience_sql_list(received_metrics) }})
                    and occurred_at >= {{ window_start }}
                    then 1
            end
        ) > 0
        and count(
            case
                when
                    metric in ('opened', 'clicked')
                    and coalesce(is_machine, false) = false
                    and occurred_at >= {{ window_start }}
                    then 1
            end
        ) = 0
{%- endmacro %}
