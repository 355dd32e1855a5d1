{#
    Message events per day, channel and metric, against the lower median of the same
    weekday over the previous `volume_baseline_weeks` weeks (weekly seasonality: Mondays
    are compared with Mondays; see macros/stats/lower_median.sql for why the lower one). Days without events are rows with 0, so a dead webhook is a
    drop, not a missing row. Only complete days before as_of, within
    `reporting_history_days`; a (channel, metric) appears from its first day with events.
#}

with

days as (

    select cast(date_day as date) as event_date

    from (
        {{ dbt.date_spine(
            'day',
            dbt.dateadd('day', -1 * var('reporting_history_days'),
                        'cast(' ~ as_of_timestamp() ~ ' as date)'),
            'cast(' ~ as_of_timestamp() ~ ' as date)',
        ) }}
    ) as spine

),

events as (

    select
        channel,
        metric,
        cast(occurred_at as date) as event_date

    from {{ ref('fct_message_events') }}

    where
        occurred_at
        < cast(cast({{ as_of_timestamp() }} as date) as {{ dbt.type_timestamp() }})

),

series as (

    select
        channel,
        metric,
        min(event_date) as first_event_date

    from events

    group by 1, 2

),

daily_counts as (

    select
        channel,
        metric,
        event_date,
        count(*) as events

    from events

    group by 1, 2, 3

),

filled as (

    select
        days.event_date,
        series.channel,
        series.metric,
        coalesce(daily_counts.events, 0) as events

    from days

    inner join series
        on days.event_date >= series.first_event_date

    left join daily_counts
        on
            series.channel = daily_counts.channel
            and series.metric = daily_counts.metric
            and days.event_date = daily_counts.event_date

),

baselines as (

    select
        filled.event_date,
        filled.channel,
        filled.metric,
        {{ lower_median('history.events') }} as baseline_median,
        count(history.events) as baseline_weeks

    from filled

    left join filled as history
        on
            filled.channel = history.channel
            and filled.metric = history.metric
            and filled.event_date > history.event_date
            and history.event_date >= {{ dbt.dateadd(
                'day', -7 * var('volume_baseline_weeks'), 'filled.event_date'
            ) }}
            {# Same weekday: a whole number of weeks apart. #}
            and mod(
                {{ dbt.datediff('history.event_date', 'filled.event_date', 'day') }}, 7
            ) = 0

    group by 1, 2, 3

),

final as (

    select
        filled.event_date,
        filled.channel,
        filled.metric,
        filled.events,
        baselines.baseline_median,
        baselines.baseline_weeks,
        {{ volume_anomaly_direction(
            'filled.events',
            'baselines.baseline_median',
            'baselines.baseline_weeks',
            var('volume_sensitivity'),
            var('volume_min_history_weeks'),
            var('volume_direction'),
            var('volume_noise_sigmas'),
        ) }} as anomaly_direction

    from filled

    inner join baselines
        on
            filled.event_date = baselines.event_date
            and filled.channel = baselines.channel
            and filled.metric = baselines.metric

)

select
    *,
    anomaly_direction is not null as is_anomaly

from final
