{#
    The latest exit reason per audience and Segment identity (user id, or the email-derived
    anonymousId under the identity policy user_id_or_email), for identities whose most
    recent ledger change is an exit. The sync labels "Audience Exited" with it; a member
    Segment holds that has no row here exits as window_expired.
    A member who was sent under an anonymousId and has since gained a user id is re-keyed:
    the user id enters, and the anonymousId gets a row here with identity_changed, so the
    anonymous profile is told it left instead of keeping a stale true trait.
    phone, like on memberships, only for SMS audiences (unsubscribed_channels: [sms]).
#}

{%- set policy = segment_identity_policy() %}

with

ledger as (

    select * from {{ ref('fct_audience_membership_changes') }}

),

people as (

    select
        person_id,
        user_id,
        email,
        phone

    from {{ ref('dim_people') }}

),

sms_audiences as (

    select distinct audience_key

    from {{ ref('dim_audiences') }}

    where is_latest and has_sms_unsubscribe_exit

),

keyed_changes as (

    select
        ledger.audience_key,
        ledger.person_id,
        ledger.user_id,
        {% if policy == 'user_id_or_email' %}
            case
                when ledger.user_id is null and people.email is not null
                    then {{ segment_anonymous_id('people.email') }}
            end
        {% else %}
            cast(null as {{ dbt.type_string() }})
        {% endif %} as anonymous_id,
        people.email,
        case when sms_audiences.audience_key is not null then people.phone end as phone,
        ledger.change_type,
        ledger.exit_reason,
        ledger.changed_at,
        ledger.change_sequence

    from ledger

    left join people
        on ledger.person_id = people.person_id

    left join sms_audiences
        on ledger.audience_key = sms_audiences.audience_key

),

ranked as (

    select
        *,
        row_number() over (
            partition by audience_key, user_id, anonymous_id
            order by changed_at desc, change_sequence desc
        ) as recency_rank

    from keyed_changes

    where user_id is not null or anonymous_id is not null

),

latest_exits as (

    select
        audience_key,
        user_id,
        anonymous_id,
        person_id,
        email,
        phone,
        exit_reason,
        changed_at as exited_at

    from ranked

    where recency_rank = 1 and change_type = 'exited'

),

{% if policy == 'user_id_or_email' %}
    {# Entered while anonymous, identified since: the anonymousId Segment may still hold. #}
    superseded_anonymous_ids as (

        select
            ledger.audience_key,
            cast(null as {{ dbt.type_string() }}) as user_id,
            {{ segment_anonymous_id('people.email') }} as anonymous_id,
            ledger.person_id,
            people.email,
            case
                when sms_audiences.audience_key is not null then people.phone
            end as phone,
            'identity_changed' as exit_reason,
            max(ledger.changed_at) as exited_at

        from ledger

        inner join people
            on ledger.person_id = people.person_id

        left join sms_audiences
            on ledger.audience_key = sms_audiences.audience_key

        where
            ledger.user_id is null
            and people.user_id is not null
            and people.email is not null

        group by 1, 2, 3, 4, 5, 6

    ),

    exits_unioned as (

        select * from latest_exits

        union all

        select superseded_anonymous_ids.*

        from superseded_anonymous_ids

        left join latest_exits
            on
                superseded_anonymous_ids.audience_key = latest_exits.audience_key
                and superseded_anonymous_ids.anonymous_id = latest_exits.anonymous_id

        where latest_exits.anonymous_id is null

    ),
{% else %}
    exits_unioned as (

        select * from latest_exits

    ),
{% endif %}

stamped as (

    select
        *,
        {#- As on sync_segment__audience_memberships: the sync refuses a what-if build. #}
        {{ as_of_timestamp() }} as built_as_of,
        {{ 'true' if as_of_is_future() else 'false' }} as is_built_for_future_as_of

    from exits_unioned

)

select * from stamped
