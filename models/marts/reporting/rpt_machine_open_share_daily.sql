{#
    Opens per day and channel, and the share a machine made (Apple Mail Privacy
    Protection prefetches, proxies): a jump means a mailbox provider changed something,
    and open-based audiences move with it. Complete days before as_of only.
#}

with

opens as (

    select
        channel,
        cast(occurred_at as date) as event_date,
        coalesce(is_machine, false) as is_machine

    from {{ ref('fct_message_events') }}

    where
        metric = 'opened'
        and occurred_at
        < cast(cast({{ as_of_timestamp() }} as date) as {{ dbt.type_timestamp() }})
        and occurred_at >= {{ dbt.dateadd(
            'day', -1 * var('reporting_history_days'),
            'cast(cast(' ~ as_of_timestamp() ~ ' as date) as ' ~ dbt.type_timestamp() ~ ')'
        ) }}

),

final as (

    select
        event_date,
        channel,
        count(*) as opens,
        sum(case when is_machine then 1 else 0 end) as machine_opens,
        cast(sum(case when is_machine then 1 else 0 end) as {{ type_double() }})
        / count(*) as machine_open_share

    from opens

    group by 1, 2

)

select * from final
