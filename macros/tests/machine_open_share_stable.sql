{#
    Data-health test: on each of the last `recent_days` days before as_of, each
    channel's machine-open share stays within `max_change` (absolute, 0.15 = 15 points)
    of its median over the `baseline_days` days before that day. A jump means a mailbox
    provider changed how it fetches mail (as Apple Mail Privacy Protection did) and
    open-based audiences shift. Days with fewer than `min_opens` opens are not judged nor
    used as baseline. For rpt_machine_open_share_daily. Fails with the days that jumped.
#}
{% test machine_open_share_stable(
    model, max_change=0.15, baseline_days=14, recent_days=7, min_opens=50
) %}

with

days as (

    select
        event_date,
        channel,
        opens,
        machine_open_share

    from {{ model }}

    where opens >= {{ min_opens }}

),

checked as (

    select
        days.event_date,
        days.channel,
        days.opens,
        days.machine_open_share,
        {{ median('history.machine_open_share') }} as baseline_share,
        count(history.event_date) as baseline_days

    from days

    inner join days as history
        on
            days.channel = history.channel
            and history.event_date < days.event_date
            and history.event_date >= {{ dbt.dateadd(
                'day', -1 * baseline_days, 'days.event_date'
            ) }}

    where days.event_date >= {{ dbt.dateadd(
        'day', -1 * recent_days, 'cast(' ~ as_of_timestamp() ~ ' as date)'
    ) }}

    group by days.event_date, days.channel, days.opens, days.machine_open_share

)

select * from checked
where
    machine_open_share - baseline_share > {{ max_change }}
    or baseline_share - machine_open_share > {{ max_change }}

{% endtest %}
