{#
    Data-health test: no (channel, metric) had an anomalous day in the last `recent_days`
    days before as_of, against the same weekday's median over the previous weeks (the
    rule is volume_anomaly_direction's). For rpt_event_volumes_daily or any model with
    event_date, channel, metric, events, baseline_median and baseline_weeks. Fails with
    the anomalous days and their direction.
#}
{% test event_volume_within_baseline(
    model,
    sensitivity=none,
    min_history_weeks=none,
    direction=none,
    noise_sigmas=none,
    recent_days=7
) %}

with

checked as (

    select
        event_date,
        channel,
        metric,
        events,
        baseline_median,
        baseline_weeks,
        {{ volume_anomaly_direction(
            'events',
            'baseline_median',
            'baseline_weeks',
            sensitivity if sensitivity is not none else var('volume_sensitivity'),
            min_history_weeks if min_history_weeks is not none
            else var('volume_min_history_weeks'),
            direction if direction is not none else var('volume_direction'),
            noise_sigmas if noise_sigmas is not none else var('volume_noise_sigmas'),
        ) }} as anomaly_direction

    from {{ model }}

    where event_date >= {{ dbt.dateadd(
        'day', -1 * recent_days, 'cast(' ~ as_of_timestamp() ~ ' as date)'
    ) }}

)

select * from checked
where anomaly_direction is not null

{% endtest %}
