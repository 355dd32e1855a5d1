{#
    The engagement signal of an audience: one row per person with the time of their latest
    qualifying message event (signal_at) and how many qualified (count_signals).

    metrics        list of metrics, e.g. ['clicked'] (webhook vocabulary)
    channels       list of channels, e.g. ['email', 'sms']; none = any
    campaign_ids, broadcast_ids, newsletter_ids, action_ids, journey_ids
                   lists of parent ids (strings); none = any. Ids, never names: names change.
    link_url_like  a SQL LIKE pattern on the clicked URL, e.g. '%/cart%' (a string literal:
                   quotes in it are escaped, never SQL)
    human_only     drop machine opens/clicks (Apple MPP, prefetch, link scanners); unknown
                   (null) counts as human, as Customer.io's older data carries no flag
    min_signals    at least this many qualifying events inside the window
    within_hours   the latest signal is at most this old (measured from as_of)
    at_least_hours and at least this old ("clicked but did not buy within 48 h")
#}
{% macro audience_signals(
    metrics,
    channels=none,
    campaign_ids=none,
    broadcast_ids=none,
    newsletter_ids=none,
    action_ids=none,
    journey_ids=none,
    link_url_like=none,
    human_only=true,
    min_signals=1,
    within_hours=none,
    at_least_hours=none
) -%}
    {#- Values that reach SQL other than as quoted literals must be what they claim. -#}
    {%- do audience_boolean(human_only, 'human_only') -%}
    {%- do audience_number(min_signals, 'min_signals', 1) -%}
    {%- set windows = {'within_hours': within_hours, 'at_least_hours': at_least_hours} -%}
    {%- for name, value in windows.items() if value is not none -%}
        {%- do audience_number(value, name) -%}
    {%- endfor -%}
    {%- set as_of = as_of_timestamp() -%}
    {%- set filters = {
        'metric': metrics,
        'channel': channels,
        'campaign_id': campaign_ids,
        'broadcast_id': broadcast_ids,
        'newsletter_id': newsletter_ids,
        'action_id': action_ids,
        'journey_id': journey_ids,
    } -%}
    select
        person_id,
        max(occurred_at) as signal_at,
        count(*) as count_signals

    from {{ ref('int_message_events_resolved') }}

    where
        person_id is not null
        and occurred_at <= {{ as_of }}
        {%- for column, values in filters.items() if values is not none %}
        and {{ column }} in ({{ audience_sql_list(values) }})
        {%- endfor %}
        {%- if link_url_like is not none %}
        and link_url like {{ sql_string_literal(link_url_like) }}
        {%- endif %}
        {%- if human_only %}
        and coalesce(is_machine, false) = false
        {%- endif %}
        {%- if within_hours is not none %}
        and occurred_at >= {{ dbt.dateadd('hour', -1 * within_hours, as_of) }}
        {%- endif %}

    group by 1

    having
        count(*) >= {{ min_signals }}
        {%- if at_least_hours is not none %}
        and max(occurred_at) <= {{ dbt.dateadd('hour', -1 * at_least_hours, as_of) }}
        {%- endif %}
{%- endmacro %}
