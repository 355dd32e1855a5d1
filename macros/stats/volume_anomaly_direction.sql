{#
    'drop', 'spike' or null: is a day's count anomalous against its baseline median?
    One owner of the rule, used by rpt_event_volumes_daily (with the project's vars) and
    the event_volume_within_baseline test (with the test's arguments).
    A day is anomalous when the baseline has at least `min_history_weeks` points and the
    count is off the median by more than `sensitivity` times the median AND by more than
    three Poisson standard deviations (3 * sqrt(median)): the relative rule catches a
    broken webhook on a big metric, the absolute floor keeps small metrics (a dozen SMS
    clicks a day) from alerting on counting noise. `direction`: drop, spike or both.
#}
{% macro volume_anomaly_direction(
    events, baseline_median, baseline_weeks, sensitivity, min_history_weeks, direction
) -%}
    {%- if direction not in ['drop', 'spike', 'both'] -%}
        {{ exceptions.raise_compiler_error(
            "direction must be drop, spike or both, not '" ~ direction ~ "'"
        ) }}
    {%- endif -%}
    case
        when {{ baseline_weeks }} < {{ min_history_weeks }} then null
        {% if direction in ['drop', 'both'] -%}
        when
            {{ baseline_median }} - {{ events }} > {{ sensitivity }} * {{ baseline_median }}
            and {{ baseline_median }} - {{ events }} > 3 * sqrt({{ baseline_median }})
            then 'drop'
        {% endif -%}
        {% if direction in ['spike', 'both'] -%}
        when
            {{ events }} - {{ baseline_median }} > {{ sensitivity }} * {{ baseline_median }}
            and {{ events }} - {{ baseline_median }} > 3 * sqrt({{ baseline_median }})
            then 'spike'
        {% endif -%}
    end
{%- endmacro %}
