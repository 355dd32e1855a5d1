{#
    One row per person with message events up to as_of: the last human open or click on
    each channel of var('engagement_channels'), the first message event on each of those
    channels, and the first message event of any kind.
    Machine opens and clicks never count; an unknown flag (null) counts as human.
    The first event per channel is here so that an absence audience ("messaged for at least
    45 days, no human engagement in them") reads only its window's events: without it,
    each such audience groups every event of the history again. That makes it part of
    those audiences' rule: a change to how it is counted changes who is a member, so it
    needs new versions of the absence audiences (README, "Add or change an audience"),
    which their fingerprints (audience SQL and macros) would not demand on their own.
    A run folds in the events counted since the previous one, rebuilds the people who
    lost one, and checks the rest (macros/people/summarised_per_person.sql).
#}

{#- The summary's columns, each with how two partial results merge. -#}
{%- set columns = {} -%}

{%- set aggregates -%}
    {%- for channel in var('engagement_channels') %}
    {%- do columns.update({
        'last_human_' ~ channel ~ '_engagement_at': 'max',
        'first_' ~ channel ~ '_message_event_at': 'min',
    }) %}
    max(
        case
            when
                channel = '{{ channel }}'
                and metric in ('opened', 'clicked')
                and coalesce(is_machine, false) = false
                then occurred_at
        end
    ) as last_human_{{ channel }}_engagement_at,
    min(
        case when channel = '{{ channel }}' then occurred_at end
    ) as first_{{ channel }}_message_event_at,
    {%- endfor %}
    min(occurred_at) as first_message_event_at
    {%- do columns.update({'first_message_event_at': 'min'}) %}
{%- endset %}

with

summarised as (

    {{ summarised_per_person(
        ref('int_message_events_resolved'), columns, aggregates=aggregates
    ) }}

)

select * from summarised
