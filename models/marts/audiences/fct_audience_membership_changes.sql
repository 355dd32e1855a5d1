{%- set rebuild_ledger = var('rebuild_ledger', false) -%}
{{
    config(
        materialized='incremental',
        unique_key='membership_change_id',
        incremental_strategy=('append' if target.type == 'spark' else 'delete+insert'),
        on_schema_change='append_new_columns',
        full_refresh=(rebuild_ledger is sameas true),
    )
}}
{#
    The membership ledger: one row per entry or exit, appended run after run, so "who was in
    audience X at time T and why did they leave" has an answer. Each run compares the
    current members (as of as_of) with the stints this ledger still has open; changed_at is
    the run's as_of. Both arms are recorded: lift is measured on the holdout.
    Exit reasons, first match wins:
    - version_changed, for a member whose arm the latest version assigns differently (a
      new holdout_share): the stint exits and a new one enters in the new arm, in the same
      run, so the ledger's arm is always the one the sync and the lift use;
    - audience_retired: the audience is no longer defined (its models were removed);
    - purchased, unsubscribed, suppressed: each only for audiences whose exit_reasons in
      _audiences.yml say their suppressions can cause it. A purchase counts only when it
      came at or after the stint's signal and after the ledger's previous look at the
      audiences (int_audience_ledger_moments): a member who bought, then clicked again
      and was still in at that look did not leave because of that purchase;
    - identity_changed: the person was merged away, or the user id the stint was keyed
      under is gone or another (a stint opened with no user id keeps none: that is no
      change);
    - version_changed: still a member of the stint's old version, not of the latest;
    - window_expired.

    History is only written forwards, and only for real moments:
    - a build with an as_of at or before the ledger's latest change (a replay of the past)
      appends nothing;
    - a build with an as_of in the future (beyond as_of_future_skew_minutes) appends
      nothing and warns: its exits would be dated ahead of every later real build, which
      would then append nothing until that date;
    - a run with `--empty` (dbt's schema-only run, whose refs read no rows) appends nothing
      and says so: it sees no members, so it would record every member as exited, and the
      next real build at the same as_of would then append nothing, leaving them exited;
    - past rows cannot be recomputed from the warehouse, so `--full-refresh` leaves this
      model alone: the full_refresh config overrides the flag
      (https://docs.getdbt.com/reference/resource-configs/full_refresh). The one way to
      start it over is the explicit var `rebuild_ledger: true`, which drops every past entry
      and exit (README, "Operating the ledger").
#}

{%- set empty_run = is_empty_run() -%}
{%- set writes_history = not as_of_is_future() and not empty_run -%}
{%- if execute -%}
    {%- if rebuild_ledger is not sameas true and rebuild_ledger is not sameas false -%}
        {{ exceptions.raise_compiler_error(
            "rebuild_ledger must be true or false, not " ~ (rebuild_ledger | string)
        ) }}
    {%- endif -%}
    {%- if rebuild_ledger and empty_run -%}
        {{ exceptions.raise_compiler_error(
            "rebuild_ledger with --empty would leave an empty ledger: rebuild without --empty"
        ) }}
    {%- elif rebuild_ledger and not writes_history -%}
        {{ exceptions.raise_compiler_error(
            "rebuild_ledger with a future as_of (" ~ var('as_of') ~ ") would leave an empty "
            ~ "ledger: rebuild without a future as_of"
        ) }}
    {%- endif -%}
    {%- if rebuild_ledger -%}
        {%- do exceptions.warn(
            "rebuild_ledger: " ~ this ~ " is rebuilt from scratch. Every past entry and exit "
            ~ "(with its exit reason and date) is dropped; current members re-enter as of "
            ~ as_of_datetime() ~ ", so fct_audience_memberships.entered_at restarts and "
            ~ "sync_segment__audience_exits lists no earlier exits."
        ) -%}
    {%- elif empty_run -%}
        {%- do exceptions.warn(
            "--empty: " ~ this ~ " records no entries or exits for this run (its refs read "
            ~ "no rows, so every member would look exited); the next build without --empty "
            ~ "carries on as before."
        ) -%}
    {%- elif not writes_history -%}
        {%- do exceptions.warn(
            "as_of " ~ as_of_datetime() ~ " is in the future: " ~ this
            ~ " records no entries or exits for this build (history is only written for "
            ~ "real moments); the next build without a future as_of carries on as before."
        ) -%}
    {%- endif -%}
{%- endif %}

with

current_members as (

    select * from {{ ref('int_audience_members_unioned') }}

),

audiences as (

    select
        audience_key,
        audience_version,
        has_purchase_exit,
        has_unsubscribe_exit,
        has_email_unsubscribe_exit,
        has_sms_unsubscribe_exit,
        has_suppression_exit

    from {{ ref('dim_audiences') }}

    where is_latest

),

people as (

    select * from {{ ref('dim_people') }}

),

globally_suppressed as (

    select * from {{ ref('int_people_globally_suppressed') }}

),

previous_look as (

    select max(evaluated_at) as evaluated_at

    from {{ ref('int_audience_ledger_moments') }}

    where evaluated_at < {{ as_of_timestamp() }}

),

latest_members as (

    select
        current_members.audience_key,
        current_members.audience_version,
        current_members.person_id,
        current_members.signal_at,
        current_members.arm,
        people.user_id

    from current_members

    inner join audiences
        on
            current_members.audience_key = audiences.audience_key
            and current_members.audience_version = audiences.audience_version

    left join people
        on current_members.person_id = people.person_id

),

{% if is_incremental() %}
    ledger_latest as (

        select
            coalesce(
                max(changed_at), cast('1900-01-01' as {{ dbt.type_timestamp() }})
            ) as latest_changed_at

        from {{ this }}

    ),

    ledger_ranked as (

        select
            audience_key,
            audience_version,
            person_id,
            user_id,
            arm,
            change_type,
            signal_at,
            row_number() over (
                partition by audience_key, person_id
                order by changed_at desc, change_sequence desc
            ) as recency_rank

        from {{ this }}

    ),

    open_stints as (

        select
            audience_key,
            audience_version,
            person_id,
            user_id,
            arm,
            signal_at

        from ledger_ranked

        where recency_rank = 1 and change_type = 'entered'

    ),
{% else %}
    open_stints as (

        select
            audience_key,
            audience_version,
            person_id,
            user_id,
            arm,
            signal_at

        from latest_members

        where false

    ),
{% endif %}

{# Members of every version, to tell a version change from an expiry. #}
still_in_old_version as (

    select
        audience_key,
        audience_version,
        person_id

    from current_members

),

entries as (

    select
        latest_members.audience_key,
        latest_members.audience_version,
        latest_members.person_id,
        latest_members.user_id,
        latest_members.arm,
        latest_members.signal_at,
        'entered' as change_type,
        cast(null as {{ dbt.type_string() }}) as exit_reason,
        1 as change_sequence

    from latest_members

    left join open_stints
        on
            latest_members.audience_key = open_stints.audience_key
            and latest_members.person_id = open_stints.person_id

    {# A new member, or one whose arm changed (their old stint exits below). #}
    where open_stints.person_id is null or open_stints.arm != latest_members.arm

),

exits as (

    select
        open_stints.audience_key,
        open_stints.audience_version,
        open_stints.person_id,
        {# A stint opened before the person had a user id exits under the one they have now. #}
        coalesce(open_stints.user_id, people.user_id) as user_id,
        open_stints.arm,
        open_stints.signal_at,
        'exited' as change_type,
        case
            when latest_members.person_id is not null then 'version_changed'
            when audiences.audience_key is null then 'audience_retired'
            when
                audiences.has_purchase_exit
                and {{ dbt.date_trunc('second', 'people.last_purchase_at') }}
                >= {{ dbt.date_trunc('second', 'open_stints.signal_at') }}
                and (
                    previous_look.evaluated_at is null
                    or people.last_purchase_at > previous_look.evaluated_at
                )
                then 'purchased'
            when
                audiences.has_unsubscribe_exit
                and (
                    people.is_unsubscribed
                    or (
                        people.is_email_unsubscribed
                        and audiences.has_email_unsubscribe_exit
                    )
                    or (
                        people.is_sms_unsubscribed
                        and audiences.has_sms_unsubscribe_exit
                    )
                )
                then 'unsubscribed'
            when
                audiences.has_suppression_exit
                and (
                    people.has_spam_complaint
                    or people.has_hard_bounce
                    or globally_suppressed.person_id is not null
                )
                then 'suppressed'
            when
                people.person_id is null
                or (
                    open_stints.user_id is not null
                    and (
                        people.user_id is null
                        or people.user_id != open_stints.user_id
                    )
                )
                then 'identity_changed'
            when
                still_in_old_version.person_id is not null
                and audiences.audience_version != open_stints.audience_version
                then 'version_changed'
            else 'window_expired'
        end as exit_reason,
        0 as change_sequence

    from open_stints

    left join latest_members
        on
            open_stints.audience_key = latest_members.audience_key
            and open_stints.person_id = latest_members.person_id

    left join people
        on open_stints.person_id = people.person_id

    left join globally_suppressed
        on open_stints.person_id = globally_suppressed.person_id

    left join audiences
        on open_stints.audience_key = audiences.audience_key

    left join still_in_old_version
        on
            open_stints.audience_key = still_in_old_version.audience_key
            and open_stints.audience_version = still_in_old_version.audience_version
            and open_stints.person_id = still_in_old_version.person_id

    cross join previous_look

    {# Gone, or still in but in the other arm (their new stint enters above). #}
    where latest_members.person_id is null or latest_members.arm != open_stints.arm

),

changes as (

    select * from entries

    union all

    select * from exits

),

final as (

    select
        ---------- ids
        {{ generate_surrogate_key([
            'changes.audience_key',
            'changes.person_id',
            'changes.change_type',
            as_of_timestamp(),
        ]) }} as membership_change_id,
        changes.audience_key,
        changes.person_id,
        changes.user_id,

        ---------- strings
        changes.arm,
        changes.change_type,
        changes.exit_reason,

        ---------- numerics
        changes.audience_version,
        {# Within one run an exit sorts before an entry. #}
        changes.change_sequence,

        ---------- timestamps
        changes.signal_at,
        {{ as_of_timestamp() }} as changed_at

    from changes

    {% if is_incremental() %}
        cross join ledger_latest
    {% endif %}

    {#- A future as_of writes nothing; nor does a past one (not after the last change). #}
    where
        {% if is_incremental() -%}
            {{ as_of_timestamp() }} > ledger_latest.latest_changed_at and
        {% endif -%}
        {{ 'true' if writes_history else 'false' }}

)

select * from final
