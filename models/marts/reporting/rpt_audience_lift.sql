{#
    Does the audience work? Treatment vs holdout per audience version and entry cohort
    (the ISO week, Monday, of entering), from the membership ledger: a member converts
    with a non-cancelled order within conversion_window_days (audience meta, default 7) of
    entering. Only entries whose window has closed by as_of are counted, so a cohort's
    numbers only grow until its window closes, never shrink. A person who enters twice in
    one week counts once, from the first entry; a member moved to the other arm by a new
    holdout_share is no new entry (arm_switches below). The statistics (intervals, minimum
    detectable effect) are audience_lift_statistics, the macro the calibration test proves.
#}

{% set registry = audience_registry() %}

with

audience_versions as (

    {% for audience in registry %}
        select
            '{{ audience.audience_key }}' as audience_key,
            {{ audience.audience_version }} as audience_version,
            {{ audience.conversion_window_days }} as conversion_window_days,
            {{ 'true' if audience.holdout_share > 0 else 'false' }} as has_holdout
        {% if not loop.last %}union all{% endif %}
    {% else %}
        select
            cast(null as {{ dbt.type_string() }}) as audience_key,
            cast(null as {{ dbt.type_int() }}) as audience_version,
            cast(null as {{ dbt.type_int() }}) as conversion_window_days,
            cast(null as {{ dbt.type_boolean() }}) as has_holdout
        where false
    {% endfor %}

),

ledger as (

    select * from {{ ref('fct_audience_membership_changes') }}

),

{#
    The ledger exits and re-enters a member in one build only when the latest version
    puts them in the other arm (a new holdout_share). Such a member was in the audience,
    and treated or held out, before: they are no fresh entrant, and counting them would
    fill the new version's first cohort with long-standing members on one side (the
    people a larger share moves into the holdout) against fresh entrants on the other.
#}
arm_switches as (

    select
        audience_key,
        person_id,
        changed_at

    from ledger

    where change_type = 'exited'

),

entries as (

    select
        ledger.audience_key,
        ledger.audience_version,
        ledger.person_id,
        ledger.arm,
        ledger.changed_at as entered_at,
        cast({{ dbt.date_trunc('week', 'ledger.changed_at') }} as date) as cohort_week

    from ledger

    left join arm_switches
        on
            ledger.audience_key = arm_switches.audience_key
            and ledger.person_id = arm_switches.person_id
            and ledger.changed_at = arm_switches.changed_at

    where ledger.change_type = 'entered' and arm_switches.person_id is null

),

first_entries as (

    select
        entries.*,
        row_number() over (
            partition by
                entries.audience_key,
                entries.audience_version,
                entries.person_id,
                entries.cohort_week
            order by entries.entered_at
        ) as entry_rank

    from entries

),

entries_with_windows as (

    select
        first_entries.audience_key,
        first_entries.audience_version,
        first_entries.person_id,
        first_entries.arm,
        first_entries.cohort_week,
        first_entries.entered_at,
        audience_versions.conversion_window_days,
        audience_versions.has_holdout,
        {{ dbt.dateadd(
            'day', 'audience_versions.conversion_window_days', 'first_entries.entered_at'
        ) }} as window_ends_at

    from first_entries

    inner join audience_versions
        on
            first_entries.audience_key = audience_versions.audience_key
            and first_entries.audience_version = audience_versions.audience_version

    where first_entries.entry_rank = 1

),

purchases as (

    select
        person_id,
        ordered_at,
        total_cents,
        currency

    from {{ ref('fct_orders') }}

    where not is_cancelled and person_id is not null

),

outcomes as (

    select
        entries_with_windows.audience_key,
        entries_with_windows.audience_version,
        entries_with_windows.cohort_week,
        entries_with_windows.conversion_window_days,
        entries_with_windows.person_id,
        entries_with_windows.arm,
        entries_with_windows.window_ends_at <= {{ as_of_timestamp() }} as is_window_closed,
        count(purchases.person_id) > 0 as is_converter,
        coalesce(sum(purchases.total_cents), 0) as revenue_cents,
        min(purchases.currency) as lowest_currency,
        max(purchases.currency) as highest_currency,
        {#- min and max skip a null currency (an order that named none): counted apart. #}
        count(purchases.person_id) - count(purchases.currency) as orders_without_currency

    from entries_with_windows

    left join purchases
        on
            entries_with_windows.person_id = purchases.person_id
            and purchases.ordered_at > entries_with_windows.entered_at
            and purchases.ordered_at <= entries_with_windows.window_ends_at

    group by
        entries_with_windows.audience_key,
        entries_with_windows.audience_version,
        entries_with_windows.cohort_week,
        entries_with_windows.conversion_window_days,
        entries_with_windows.person_id,
        entries_with_windows.arm,
        entries_with_windows.window_ends_at

),

cohort_counts as (

    select
        audience_key,
        audience_version,
        cohort_week,
        conversion_window_days,
        {% for arm in ['treatment', 'holdout'] %}
            sum(
                case when is_window_closed and arm = '{{ arm }}' then 1 else 0 end
            ) as {{ arm }}_members,
            sum(
                case
                    when is_window_closed and arm = '{{ arm }}' and is_converter then 1
                    else 0
                end
            ) as {{ arm }}_converters,
            sum(
                case when is_window_closed and arm = '{{ arm }}' then revenue_cents else 0 end
            ) as {{ arm }}_revenue_cents,
        {% endfor %}
        min(case when is_window_closed then lowest_currency end) as lowest_currency,
        max(case when is_window_closed then highest_currency end) as highest_currency,
        sum(
            case when is_window_closed then orders_without_currency else 0 end
        ) as orders_without_currency,
        sum(case when is_window_closed then 0 else 1 end) as members_in_open_window

    from outcomes

    group by audience_key, audience_version, cohort_week, conversion_window_days

),

lift as (

    {{ audience_lift_statistics('cohort_counts') }}

),

final as (

    select
        ---------- ids
        lift.audience_key,
        lift.audience_version,
        lift.cohort_week,

        ---------- strings
        case
            when lowest_currency = highest_currency and orders_without_currency = 0
                then lowest_currency
        end as revenue_currency,

        ---------- numerics
        lift.conversion_window_days,
        treatment_members,
        holdout_members,
        treatment_converters,
        holdout_converters,
        treatment_conversion_rate,
        holdout_conversion_rate,
        {# Totals are in each order's currency: summed across currencies they mean
           nothing, so a cohort paid in several has no revenue per member. An order that
           names no currency is in an unknown one: with orders in a known one, that is
           several; on its own (every order without one) the sum is kept, currency null. #}
        {% for arm in ['treatment', 'holdout'] %}
            case
                when
                    lowest_currency is null
                    or (lowest_currency = highest_currency and orders_without_currency = 0)
                    then cast({{ arm }}_revenue_cents as {{ type_double() }})
                    / 100 / nullif({{ arm }}_members, 0)
            end as {{ arm }}_revenue_per_member,
        {% endfor %}
        absolute_lift,
        absolute_lift_ci_lower,
        absolute_lift_ci_upper,
        relative_lift,
        relative_lift_ci_lower,
        relative_lift_ci_upper,
        minimum_detectable_effect,

        ---------- booleans and reasons
        case
            {# No holdout by design (holdout_share 0): nothing to wait for or to grow. #}
            when not audience_versions.has_holdout then 'audience has no holdout'
            when members_in_open_window > 0 then 'conversion window still open'
            when
                treatment_members < {{ var('lift_min_arm_members') }}
                or holdout_members < {{ var('lift_min_arm_members') }}
                then 'arm too small'
            when absolute_lift_ci_lower <= 0 and absolute_lift_ci_upper >= 0
                then 'interval spans zero'
        end as inconclusive_reason

    from lift

    inner join audience_versions
        on
            lift.audience_key = audience_versions.audience_key
            and lift.audience_version = audience_versions.audience_version

)

select
    *,
    inconclusive_reason is not null as is_inconclusive

from final
