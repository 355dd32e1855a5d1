{#
    Treatment-arm members of synced audiences that the identity policy cannot send, one row
    per audience and person with the reason, so the sync plan, its runs table and
    `audiences report` account for every member: treatment = sent + skipped.
    missing_user_id: no user id under user_id_only; missing_identifier: neither a user id
    nor an email under user_id_or_email.
#}

{%- set policy = segment_identity_policy() %}

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

people as (

    select
        person_id,
        email

    from {{ ref('dim_people') }}

),

skipped as (

    select
        memberships.audience_key,
        memberships.audience_version,
        memberships.person_id,
        {% if policy == 'user_id_or_email' %}
            'missing_identifier'
        {% else %}
            'missing_user_id'
        {% endif %} as skip_reason

    from memberships

    inner join audiences
        on
            memberships.audience_key = audiences.audience_key
            and memberships.audience_version = audiences.audience_version

    left join people
        on memberships.person_id = people.person_id

    where
        memberships.arm = 'treatment'
        and memberships.user_id is null
        {% if policy == 'user_id_or_email' %}
            and people.email is null
        {% endif %}

)

select * from skipped
