{#
    The latest exit reason per audience and Segment user id, for people whose most recent
    ledger change is an exit. The sync labels "Audience Exited" with it.
#}

with

ledger as (

    select
        audience_key,
        user_id,
        person_id,
        change_type,
        exit_reason,
        changed_at,
        row_number() over (
            partition by audience_key, user_id
            order by changed_at desc, change_sequence desc
        ) as recency_rank

    from {{ ref('fct_audience_membership_changes') }}

    where user_id is not null

),

latest_exits as (

    select
        audience_key,
        user_id,
        person_id,
        exit_reason,
        changed_at as exited_at

    from ledger

    where recency_rank = 1 and change_type = 'exited'

)

select * from latest_exits
