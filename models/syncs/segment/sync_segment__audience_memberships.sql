{#
    What Segment should currently see: treatment-arm members of the latest version of every
    audience that syncs, keyed by the Segment user id or, under the identity policy
    user_id_or_email, by an anonymousId derived from the email of members without one.
    scripts/segment_sync diffs this against what it has already sent
    (segment_sync.audience_state). Holdout members never leave the warehouse; members the
    policy cannot send are in sync_segment__audience_skips, with the reason.
    phone goes only to SMS audiences (those that exit on an SMS unsubscribe, meta
    unsubscribed_channels: [sms]): a phone on an email audience would be PII no
    destination of that audience needs.
#}

{%- set policy = segment_identity_policy() %}

with

memberships as (

    select * from {{ ref('fct_audience_memberships') }}

),

audiences as (

    select
        audience_key,
        audience_version,
        segment_calls,
        has_sms_unsubscribe_exit as is_sms_audience

    from {{ ref('dim_audiences') }}

    where is_latest and is_synced

),

people as (

    select
        person_id,
        email,
        phone

    from {{ ref('dim_people') }}

),

treatment_members as (

    select
        memberships.audience_key,
        memberships.audience_name,
        memberships.audience_version,
        memberships.person_id,
        memberships.user_id,
        people.email,
        audiences.segment_calls,
        memberships.signal_at,
        memberships.entered_at,
        case when audiences.is_sms_audience then people.phone end as phone

    from memberships

    inner join audiences
        on
            memberships.audience_key = audiences.audience_key
            and memberships.audience_version = audiences.audience_version

    left join people
        on memberships.person_id = people.person_id

    where memberships.arm = 'treatment'

),

identified as (

    select
        audience_key,
        audience_name,
        audience_version,
        person_id,
        user_id,
        {% if policy == 'user_id_or_email' %}
            case
                when user_id is null and email is not null
                    then {{ segment_anonymous_id('email') }}
            end
        {% else %}
            cast(null as {{ dbt.type_string() }})
        {% endif %} as anonymous_id,
        email,
        phone,
        segment_calls,
        signal_at,
        entered_at,
        {#- The moment this membership is as of, and whether the build was a what-if (an
            as_of in its future, by the rule the ledger follows). The sync refuses to send
            a what-if build, read from the table itself, which a later dbt command cannot
            hide the way it replaces run_results.json (scripts/segment_sync/guards.py). #}
        {{ as_of_timestamp() }} as built_as_of,
        {{ 'true' if as_of_is_future() else 'false' }} as is_built_for_future_as_of

    from treatment_members

)

select * from identified

where user_id is not null or anonymous_id is not null
