{#
    A purchase signal: people with a non-cancelled order in the last `within_days` days
    (signal_at = their latest such order). For suppression-for-ads audiences.
#}
{% macro audience_purchasers(within_days) -%}
    {%- do audience_number(within_days, 'within_days') -%}
    {%- set as_of = as_of_timestamp() -%}
    select
        person_id,
        max(ordered_at) as signal_at,
        count(*) as count_signals

    from {{ ref('fct_orders') }}

    where
        person_id is not null
        and not is_cancelled
        and ordered_at <= {{ as_of }}
        and ordered_at >= {{ dbt.dateadd('day', -1 * within_days, as_of) }}

    group by 1
{%- endmacro %}
