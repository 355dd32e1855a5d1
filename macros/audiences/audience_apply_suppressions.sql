{#
    The shared suppressions, applied to any CTE or relation that returns
    (person_id, signal_at, count_signals). Free-SQL audiences call this directly; the
    `audience` macro calls it for macro-built ones. One owner of suppression logic.

    candidates                 name of the CTE/relation holding the candidates
    no_purchase_since_signal   drop people with a non-cancelled order at or after their
                               signal (same second counts as bought: never retarget a buyer)
    purchased_within_days      drop anyone who bought in the last N days (none = off)
    unsubscribed_channels      'any' = customer-level unsubscribe only; a list such as
                               ['email'] also drops channel-level unsubscribes; none = off
    suppress_spam_complaints   drop anyone who ever marked a message as spam
    suppress_hard_bounces      drop people whose email currently hard-bounces
    suppress_global_list       drop people on seeds/global_suppression_list.csv
    exclude_audiences          other audience models whose current members are dropped
                               (e.g. recent cart clickers out of generic retargeting), each
                               with the version it reads: {'cart_recovery_clicked_no_purchase':
                               2}. A list of names reads each one's latest_version, which
                               moves when that audience gets a new version and with it this
                               audience's members: `audiences versions check` refuses it for
                               a versioned audience (README, "Audiences").
#}
{% macro audience_apply_suppressions(
    candidates,
    no_purchase_since_signal=false,
    purchased_within_days=none,
    unsubscribed_channels='any',
    suppress_spam_complaints=true,
    suppress_hard_bounces=false,
    suppress_global_list=true,
    exclude_audiences=[]
) -%}
    {#- Values that reach SQL other than as quoted literals must be what they claim. -#}
    {%- if candidates is not string
        or not modules.re.fullmatch('[A-Za-z_][A-Za-z0-9_]*', candidates) -%}
        {{ audience_argument_error('candidates', 'the name of a CTE', candidates) }}
    {%- endif -%}
    {%- for name, value in {
        'no_purchase_since_signal': no_purchase_since_signal,
        'suppress_spam_complaints': suppress_spam_complaints,
        'suppress_hard_bounces': suppress_hard_bounces,
        'suppress_global_list': suppress_global_list,
    }.items() -%}
        {%- do audience_boolean(value, name) -%}
    {%- endfor -%}
    {%- if purchased_within_days is not none -%}
        {%- do audience_number(purchased_within_days, 'purchased_within_days') -%}
    {%- endif -%}
    {%- if unsubscribed_channels is not none and unsubscribed_channels != 'any' -%}
        {%- if unsubscribed_channels is string or unsubscribed_channels is not iterable -%}
            {{ audience_argument_error(
                'unsubscribed_channels', "'any', none or a list of channels",
                unsubscribed_channels
            ) }}
        {%- endif -%}
        {%- for channel in unsubscribed_channels -%}
            {%- do audience_one_of(channel, 'unsubscribed_channels', ['email', 'sms']) -%}
        {%- endfor -%}
    {%- endif -%}
    {#- Each excluded audience as the relation it reads: pinned, or its latest_version. -#}
    {%- set excluded_relations = [] -%}
    {%- if exclude_audiences is mapping -%}
        {%- for audience_name, audience_version in exclude_audiences.items() -%}
            {%- if audience_version is boolean or audience_version is not integer
                or audience_version < 1 -%}
                {{ audience_argument_error(
                    'exclude_audiences',
                    'a version (a whole number >= 1) for each audience',
                    exclude_audiences
                ) }}
            {#- Parsing raises nothing (audience_argument_error): no ref to a version
                that cannot exist, or dbt would stop first, without naming the argument. -#}
            {%- else -%}
                {%- do excluded_relations.append(ref(audience_name, v=audience_version)) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- elif exclude_audiences is string or exclude_audiences is not iterable -%}
        {{ audience_argument_error(
            'exclude_audiences', "a mapping {'audience': version}", exclude_audiences
        ) }}
    {%- else -%}
        {%- for audience_name in exclude_audiences -%}
            {%- do excluded_relations.append(ref(audience_name)) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do audience_exit_reasons_agree(
        no_purchase_since_signal, purchased_within_days, unsubscribed_channels,
        suppress_spam_complaints, suppress_hard_bounces, suppress_global_list
    ) -%}
    select
        {{ candidates }}.person_id,
        {{ candidates }}.signal_at,
        {{ candidates }}.count_signals

    from {{ candidates }}

    inner join {{ ref('dim_people') }} as people
        on {{ candidates }}.person_id = people.person_id

    {%- if suppress_global_list %}

    left join {{ ref('int_people_globally_suppressed') }} as globally_suppressed
        on {{ candidates }}.person_id = globally_suppressed.person_id
    {%- endif %}

    {%- for excluded_relation in excluded_relations %}

    left join {{ excluded_relation }} as excluded_{{ loop.index }}
        on {{ candidates }}.person_id = excluded_{{ loop.index }}.person_id
    {%- endfor %}

    where
        true
        {%- if no_purchase_since_signal %}
        and (
            people.last_purchase_at is null
            {#- Seconds on both sides: Segment copies carry milliseconds, webhooks not. #}
            or {{ dbt.date_trunc('second', 'people.last_purchase_at') }}
            < {{ dbt.date_trunc('second', candidates ~ '.signal_at') }}
        )
        {%- endif %}
        {%- if purchased_within_days is not none %}
        and (
            people.last_purchase_at is null
            or people.last_purchase_at
            < {{ dbt.dateadd('day', -1 * purchased_within_days, as_of_timestamp()) }}
        )
        {%- endif %}
        {%- if unsubscribed_channels is not none %}
        and not people.is_unsubscribed
        {%- if unsubscribed_channels != 'any' %}
        {%- for channel in unsubscribed_channels %}
        and not people.is_{{ channel }}_unsubscribed
        {%- endfor %}
        {%- endif %}
        {%- endif %}
        {%- if suppress_spam_complaints %}
        and not people.has_spam_complaint
        {%- endif %}
        {%- if suppress_hard_bounces %}
        and not people.has_hard_bounce
        {%- endif %}
        {%- if suppress_global_list %}
        and globally_suppressed.person_id is null
        {%- endif %}
        {%- for excluded_relation in excluded_relations %}
        and excluded_{{ loop.index }}.person_id is null
        {%- endfor %}
{%- endmacro %}
