{#
    'drop', 'spike' or null: is a day's count anomalous against its baseline median?
    One owner of the rule, used by rpt_event_volumes_daily (with the project's vars) and
    the event_volume_within_baseline test (with the test's arguments).
    A day is anomalous when the baseline has at least `min_history_weeks` points and the
    count is off the median by more than `sensitivity` times the median AND by more than
    `noise_sigmas` Poisson standard deviations (noise_sigmas * sqrt(median)): the
    relative rule catches a broken webhook on a big metric, the absolute floor keeps
    small metrics (a dozen SMS clicks a day) from alerting on counting noise.
    `direction`: drop, spike or both.
    Why 4 standard deviations by default (var volume_noise_sigmas), not 3: a build judges
    some 230 counts (about 33 channel-metric series on the demo data, 7 days each), and
    a gate that stops the sync must not fire on noise. In the normal approximation a
    count falls more than 3 standard deviations below its mean once in 740 judgements,
    so every third build or so; more than 4, once in 31,600, so once in about 140
    builds. The demo data showed it: at 3, with the 4-week baseline of then, `make demo`
    failed on every Saturday and Sunday (9 email clicks against a median of 25, 3.2
    standard deviations; 17 in-app opens against 35, 3.04), 8 of 28 consecutive end
    dates; with the 8-week baseline, on every Wednesday (4 of 28); at 4, never.
#}
{% macro volume_anomaly_direction(
    events,
    baseline_median,
    baseline_weeks,
    sensitivity,
    min_history_weeks,
    direction,
    noise_sigmas
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
            and {{ baseline_median }} - {{ events }} > {{ noise_sigmas }} * sqrt({{ baseline_median }})
            then 'drop'
        {% endif -%}
        {% if direction in ['spike', 'both'] -%}
        when
            {{ events }} - {{ baseline_median }} > {{ sensitivity }} * {{ baseline_median }}
            and {{ events }} - {{ baseline_median }} > {{ noise_sigmas }} * sqrt({{ baseline_median }})
            then 'spike'
        {% endif -%}
    end
{%- endmacro %}
