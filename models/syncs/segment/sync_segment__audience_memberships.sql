{#
    What Segment should currently see: treatment-arm members of the latest version of every
    audience that syncs, keyed by the Segment user id. scripts/segment_sync diffs this
    against what it has already sent (segment_sync.audience_state); holdout members and
    people without a user id never leave the warehouse.
#}

with

memberships as (

    select * from {{ ref('fct_audience_memberships') }}

),

audiences as (

    select
        audience_key,
        audience_version

    from {{ ref('dim_audiences') }}

    where is_latest and is_synced

),

syncable as (

    select
        memberships.audience_key,
        memberships.audience_name,
        memberships.audience_version,
        memberships.person_id,
        memberships.user_id,
        memberships.signal_at,
        memberships.entered_at

    from memberships

    inner join audiences
        on
            memberships.audience_key = audiences.audience_key
            and memberships.audience_version = audiences.audience_version

    where
        memberships.arm = 'treatment'
        and memberships.user_id is not null

)

select * from syncable
