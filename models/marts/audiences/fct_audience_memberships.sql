{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='changed_rows',
        unique_key='audience_membership_id',
        on_schema_change='append_new_columns',
    )
}}
{#
    Current members of the latest version of every audience, both arms, with the Segment
    user id and when the current stint began (from the membership ledger).

    The stint is the one the ledger shows open at as_of, so that a replay of an earlier
    as_of shows when each member's stint had begun then, not a later entry or none. The
    ledger only grows forwards: entries recorded after as_of are not that moment's history.
#}

with

current_members as (

    select * from {{ ref('int_audience_members_unioned') }}

),

audiences as (

    select
        audience_key,
        audience_version,
        audience_name

    from {{ ref('dim_audiences') }}

    where is_latest

),

people as (

    select
        person_id,
        user_id

    from {{ ref('dim_people') }}

),

ledger as (

    select
        audience_key,
        person_id,
        change_type,
        changed_at,
        row_number() over (
            partition by audience_key, person_id
            order by changed_at desc, change_sequence desc
        ) as recency_rank

    from {{ ref('fct_audience_membership_changes') }}

    where changed_at <= {{ as_of_timestamp() }}

),

open_entries as (

    select
        audience_key,
        person_id,
        changed_at as entered_at

    from ledger

    where recency_rank = 1 and change_type = 'entered'

),

members_joined as (

    select
        ---------- ids
        {{ generate_surrogate_key([
            'current_members.audience_key', 'current_members.person_id'
        ]) }} as audience_membership_id,
        current_members.audience_key,
        current_members.person_id,
        people.user_id,

        ---------- strings
        audiences.audience_name,
        current_members.arm,

        ---------- numerics
        current_members.audience_version,

        ---------- timestamps
        current_members.signal_at,
        open_entries.entered_at

    from current_members

    inner join audiences
        on
            current_members.audience_key = audiences.audience_key
            and current_members.audience_version = audiences.audience_version

    left join people
        on current_members.person_id = people.person_id

    left join open_entries
        on
            current_members.audience_key = open_entries.audience_key
            and current_members.person_id = open_entries.person_id

)

select * from members_joined
