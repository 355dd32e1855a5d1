{#
    Per-person difference between each audience's latest version and the version before
    it, as of as_of: who joins and who leaves if the new version replaces the old one.
#}

with

members as (

    select * from {{ ref('int_audience_members_unioned') }}

),

audiences as (

    select
        audience_key,
        max(audience_version) as latest_version

    from {{ ref('dim_audiences') }}

    group by 1

    having count(*) > 1

),

latest_version_members as (

    select
        members.audience_key,
        members.audience_version,
        members.person_id

    from members

    inner join audiences
        on
            members.audience_key = audiences.audience_key
            and members.audience_version = audiences.latest_version

),

previous_version_members as (

    select
        members.audience_key,
        members.audience_version,
        members.person_id

    from members

    inner join audiences
        on
            members.audience_key = audiences.audience_key
            and members.audience_version = audiences.latest_version - 1

),

joins as (

    select
        latest_version_members.audience_key,
        latest_version_members.person_id,
        latest_version_members.audience_version - 1 as from_version,
        latest_version_members.audience_version as to_version,
        'joins' as difference

    from latest_version_members

    left join previous_version_members
        on
            latest_version_members.audience_key = previous_version_members.audience_key
            and latest_version_members.person_id = previous_version_members.person_id

    where previous_version_members.person_id is null

),

leaves as (

    select
        previous_version_members.audience_key,
        previous_version_members.person_id,
        previous_version_members.audience_version as from_version,
        previous_version_members.audience_version + 1 as to_version,
        'leaves' as difference

    from previous_version_members

    left join latest_version_members
        on
            previous_version_members.audience_key = latest_version_members.audience_key
            and previous_version_members.person_id = latest_version_members.person_id

    where latest_version_members.person_id is null

),

differences as (

    select * from joins

    union all

    select * from leaves

)

select * from differences
