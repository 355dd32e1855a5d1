{#
    Audience sizes over time, from the membership ledger: per day, audience version and
    arm, the members at the end of the day, who entered and who exited that day, exits
    split by reason in one column per reason (wide: a chart reads one row per day).
    A stint counts under the version it entered with; a version change is an exit from
    the old version and an entry into the new one. Days without a build repeat the last
    size.
#}

{% set exit_reasons = ['purchased', 'unsubscribed', 'suppressed', 'window_expired',
                       'version_changed', 'identity_changed', 'audience_retired'] %}

with

days as (

    select cast(date_day as date) as day  -- noqa: RF04

    from (
        {{ dbt.date_spine(
            'day',
            dbt.dateadd('day', -1 * var('reporting_history_days'),
                        'cast(' ~ as_of_timestamp() ~ ' as date)'),
            dbt.dateadd('day', 1, 'cast(' ~ as_of_timestamp() ~ ' as date)'),
        ) }}
    ) as spine

),

changes as (

    select
        audience_key,
        audience_version,
        arm,
        change_type,
        exit_reason,
        cast(changed_at as date) as day  -- noqa: RF04

    from {{ ref('fct_audience_membership_changes') }}

),

series as (

    select
        audience_key,
        audience_version,
        arm,
        min(day) as first_day

    from changes

    group by 1, 2, 3

),

daily_changes as (

    select
        audience_key,
        audience_version,
        arm,
        day,
        sum(case when change_type = 'entered' then 1 else 0 end) as entered,
        sum(case when change_type = 'exited' then 1 else 0 end) as exited,
        {% for reason in exit_reasons %}
            sum(
                case when exit_reason = '{{ reason }}' then 1 else 0 end
            ) as exited_{{ reason }}{% if not loop.last %},{% endif %}
        {% endfor %}

    from changes

    group by 1, 2, 3, 4

),

filled as (

    select
        days.day,
        series.audience_key,
        series.audience_version,
        series.arm,
        coalesce(daily_changes.entered, 0) as entered,
        coalesce(daily_changes.exited, 0) as exited,
        {% for reason in exit_reasons %}
            coalesce(
                daily_changes.exited_{{ reason }}, 0
            ) as exited_{{ reason }}{% if not loop.last %},{% endif %}
        {% endfor %}

    from days

    inner join series
        on days.day >= series.first_day

    left join daily_changes
        on
            series.audience_key = daily_changes.audience_key
            and series.audience_version = daily_changes.audience_version
            and series.arm = daily_changes.arm
            and days.day = daily_changes.day

),

final as (

    select
        {# `day` is the reporting contract's name for the date. #}
        day,  -- noqa: RF04
        audience_key,
        audience_version,
        arm,
        sum(entered - exited) over (
            partition by audience_key, audience_version, arm
            order by day
            rows between unbounded preceding and current row
        ) as members,
        entered,
        exited,
        {% for reason in exit_reasons %}
            exited_{{ reason }}{% if not loop.last %},{% endif %}
        {% endfor %}

    from filled

)

select * from final
