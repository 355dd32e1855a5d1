{#
    One row per person summarising all their message events up to as_of, for a table
    model that groups every event of the history by person (int_people_engagement).
    `aggregates` is the aggregate select list over the events' columns, `columns` the
    names it defines, in the same order (the kept rows are read by name).

    Grouping 12.5 M events of a year of a 200k-customer brand costs 0.6 s and grows with
    the history; a daily tick changes the events of a few thousand people. So a run that
    finds its previous table rebuilds only the people whose events may have changed
    since, and keeps the rest:

    - affected: the people of event rows written since (deduplicated_at is the dedupe's
      build stamp: arrivals, better copies and re-resolved rows), the people those rows
      belonged to before (previous_person_id: they lost the event), and the people of
      held events that as_of has newly passed (occurred_at after the previous as_of).
    - everyone else keeps their row. Their events were all there at the previous build,
      with the same person and time, so each can only have lost events since, never
      gained one; a loss to a merge is seen by previous_person_id, unless the dedupe ran
      more than once in between (a `dbt build --select` of it alone) and moved an event
      twice. A better copy of an event that resolves to someone else is not recorded
      there (finding the replaced copy's person costs every run more than it saves).
    - the check, for that case and any other: the kept and rebuilt rows must count
      exactly the events there are (event_count summed against a count of the events). A
      loss anywhere makes the sum larger; then the run rebuilds every row, as a full
      refresh does. So the result is what a full refresh gives; only its cost depends on
      what changed.

    What it assumes, as the watermarks and the scoped key checks do (scripts/run/
    key_checks.py): dbt runs and loads do not overlap, and the clock that stamps rows does
    not go back. A dedupe run stamped before this table's last build but written after
    it (a clock stepped back, two overlapping runs on PostgreSQL) is not among the
    affected rows, and if it moved an event between two kept people the totals still
    agree. After such a clock correction, run this model once with --full-refresh.

    When as_of goes back (a replay), the people with events between the two moments keep
    rows that count too many, so the check rebuilds everyone. The whole summary is also
    rebuilt when the build clock is not past the previous build, when the summary's
    definition changed
    (summary_fingerprint: the aggregates and the columns, as rendered, so a
    change to var('engagement_channels') counts), on --full-refresh, in a unit test, and
    on Spark (which cannot read a table while replacing it).

    The previous build's stamp and as_of are looked up when the model runs and written
    into its SQL as constants, so that DuckDB skips the blocks of events written and
    occurred before them (min/max per row group) instead of reading every row. The check
    is in the SQL, not in Jinja, so that one query serves both paths: the full rebuild's
    branch is filtered by a one-row condition that DuckDB and PostgreSQL evaluate first,
    and costs nothing when not taken (measured: 5 ms).

    Bookkeeping columns: event_count, summarised_at (when the row was last computed; a
    kept row keeps its own), summarised_as_of, summary_fingerprint.

    Not worth it for a summary of a small part of the events. The subscription state
    groups 5 M of the 12.5 M (five metrics); through this macro, its extra reads (the
    people's events again, the count) and its wider table (the summary's timestamps
    beside the states) made its node in the tick slower, 0.5 s to 0.85-1.05 s.
#}
{% macro summarised_per_person(events, columns, aggregates) %}
    {%- set fingerprint = local_md5(aggregates ~ '|' ~ columns | join(',')) -%}
    {%- set counted -%}
        person_id is not null
        and occurred_at <= {{ as_of_timestamp() }}
    {%- endset -%}
    {%- set bookkeeping = ['event_count', 'summarised_at', 'summarised_as_of', 'summary_fingerprint'] -%}

    {%- set found = namespace(previous=none) -%}
    {%- if execute and model.resource_type != 'unit_test' and not flags.FULL_REFRESH
        and target.type != 'spark' -%}
        {%- set found.previous = load_relation(this) -%}
        {%- if found.previous is not none -%}
            {%- set held = adapter.get_columns_in_relation(found.previous)
                | map(attribute='name') | map('lower') | list -%}
            {%- for column in columns + bookkeeping if column | lower not in held -%}
                {#- Written by an older release or another var('engagement_channels'). -#}
                {%- set found.previous = none -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {%- set previous = found.previous -%}
    {%- if previous is not none -%}
        {%- set last = run_query(
            'select max(summarised_at), max(summarised_as_of), '
            ~ 'min(summary_fingerprint), max(summary_fingerprint) from ' ~ previous
        ).rows[0] -%}
        {%- if last[0] is none or last[1] is none or last[2] != fingerprint
            or last[3] != fingerprint -%}
            {#- Empty, or summarised by another definition. -#}
            {%- set previous = none -%}
        {%- else -%}
            {%- set last_summarised_at = "cast('" ~ last[0].strftime('%Y-%m-%d %H:%M:%S.%f')
                ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
            {%- set last_as_of = "cast('" ~ last[1].strftime('%Y-%m-%d %H:%M:%S.%f')
                ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
        {%- endif -%}
    {%- endif -%}

    {%- if previous is none %}
    select
        person_id,
        {{ aggregates }},
        count(*) as event_count,
        {{ run_started_timestamp() }} as summarised_at,
        {{ as_of_timestamp() }} as summarised_as_of,
        '{{ fingerprint }}' as summary_fingerprint

    from {{ events }}

    where {{ counted }}

    group by person_id
    {%- else %}
    {#- Each CTE below that is read twice is small (people, not events). #}
    with

    previous_build as (

        select
            person_id,
            {{ columns | join(', ') }},
            event_count,
            summarised_at

        from {{ previous }}

    ),

    {#- Three narrow reads, each of which the engine can skip most blocks of. #}
    affected as (

        select person_id

        from {{ events }}

        where {{ counted }} and deduplicated_at > {{ last_summarised_at }}

        union

        select previous_person_id as person_id

        from {{ events }}

        where
            deduplicated_at > {{ last_summarised_at }}
            and previous_person_id is not null

        union

        select person_id

        from {{ events }}

        where {{ counted }} and occurred_at > {{ last_as_of }}

    ),

    rebuilt_for_affected as (

        select
            person_id,
            {{ aggregates }},
            count(*) as event_count

        from {{ events }}

        where
            {{ counted }}
            and person_id in (select person_id from affected)

        group by person_id

    ),

    kept_and_rebuilt as (

        select
            person_id,
            {{ columns | join(', ') }},
            event_count,
            {{ run_started_timestamp() }} as summarised_at

        from rebuilt_for_affected

        union all

        select
            previous_build.person_id,
            {%- for column in columns %}
            previous_build.{{ column }},
            {%- endfor %}
            previous_build.event_count,
            previous_build.summarised_at

        from previous_build

        left join affected
            on previous_build.person_id = affected.person_id

        where affected.person_id is null

    ),

    {#- False (never null) unless the kept rows can be trusted. #}
    check_passed as (

        select
            coalesce(
                {{ last_summarised_at }} < {{ run_started_timestamp() }}
                and (select coalesce(sum(event_count), 0) from kept_and_rebuilt)
                = (select count(*) from {{ events }} where {{ counted }}),
                false
            ) as is_passed

    ),

    rebuilt_in_full as (

        select
            person_id,
            {{ aggregates }},
            count(*) as event_count,
            {{ run_started_timestamp() }} as summarised_at

        from {{ events }}

        where
            {{ counted }}
            and not (select is_passed from check_passed)

        group by person_id

    ),

    summarised as (

        select * from kept_and_rebuilt

        where (select is_passed from check_passed)

        union all

        select
            person_id,
            {{ columns | join(', ') }},
            event_count,
            summarised_at

        from rebuilt_in_full

    )

    select
        *,
        {{ as_of_timestamp() }} as summarised_as_of,
        '{{ fingerprint }}' as summary_fingerprint

    from summarised
    {%- endif %}
{% endmacro %}
