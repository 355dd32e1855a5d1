{#
    Data-health test: each channel's machine-open share over the last `recent_days` days
    before as_of stays within `max_change` (absolute: 0.15 = 15 points) of its share over
    the `baseline_days` days before those. A jump means a mailbox provider changed how it
    fetches mail (as Apple Mail Privacy Protection did) and open-based audiences shift.
    Shares are pooled over each period, not compared day by day: a newsletter day is
    mostly prefetches and a quiet day is not, and that weekly rhythm is no jump.
    Periods with fewer than `min_opens` opens are not judged. For
    rpt_machine_open_share_daily (event_date, channel, opens, machine_opens). Fails with
    the channels that jumped.
#}
{% test machine_open_share_stable(
    model, max_change=0.15, baseline_days=28, recent_days=7, min_opens=200
) %}

{%- set recent_start = dbt.dateadd(
    'day', -1 * recent_days, 'cast(' ~ as_of_timestamp() ~ ' as date)'
) -%}
{%- set baseline_start = dbt.dateadd(
    'day', -1 * (recent_days + baseline_days), 'cast(' ~ as_of_timestamp() ~ ' as date)'
) %}

with

periods as (

    select
        channel,
        sum(case when event_date >= {{ recent_start }} then opens else 0 end)
            as recent_opens,
        sum(case when event_date >= {{ recent_start }} then machine_opens else 0 end)
            as recent_machine_opens,
        sum(case when event_date < {{ recent_start }} then opens else 0 end)
            as baseline_opens,
        sum(case when event_date < {{ recent_start }} then machine_opens else 0 end)
            as baseline_machine_opens

    from {{ model }}

    where
        event_date >= {{ baseline_start }}
        and event_date < cast({{ as_of_timestamp() }} as date)

    group by channel

),

shares as (

    select
        channel,
        recent_opens,
        baseline_opens,
        cast(recent_machine_opens as {{ type_double() }})
        / nullif(recent_opens, 0) as recent_share,
        cast(baseline_machine_opens as {{ type_double() }})
        / nullif(baseline_opens, 0) as baseline_share

    from periods

    where recent_opens >= {{ min_opens }} and baseline_opens >= {{ min_opens }}

)

select * from shares
where
    recent_share - baseline_share > {{ max_change }}
    or baseline_share - recent_share > {{ max_change }}

{% endtest %}
