{#
    One row per person summarising their message events up to as_of, for a table model
    that would otherwise group every event of the history by person on every run
    (int_people_engagement, int_people_subscription_state).
    - `aggregates`: the aggregate select list over the events' columns;
    - `columns`: the names it defines, each with how two partial results merge: `max` or
      `min` (a mapping, read by name, so its order need not match);
    - `where`: an optional condition on the events, beside "has a person, by as_of".

    Grouping 12.5 M events of a year of a 200k-customer brand costs 0.2-0.6 s per
    summary and grows with the history; a daily tick adds the events of a few thousand
    people. So a run that finds its previous table folds in what changed since, and
    keeps the rest:

    - gained: the events counted now that the previous build did not count: rows the
      dedupe wrote since (deduplicated_at, its build stamp: arrivals, better copies and
      re-resolved rows) and held events that as_of has newly passed (occurred_at after
      the previous as_of). They are grouped per person and merged into that person's
      kept row with each column's merge (max and min, as event_count adds up), so the
      run reads the day's rows, not the people's whole history.
    - lost: the people a rewritten row belonged to before (previous_person_id: an event
      re-resolved to someone else, or a copy replaced by a better one, whose values may
      differ). A merge cannot take an event out, so these people alone are rebuilt from
      all their events.
    - everyone else keeps their row. Their events were all there at the previous build,
      with the same person and time, so each can only have lost events since, never
      gained one, and a loss is in previous_person_id, unless the dedupe ran more than
      once in between (a `dbt build --select` of it alone) and moved an event twice.
    - the check, for that case and any other: the rows must count exactly the events
      there are (event_count summed against a count of the events). A loss not seen
      leaves a kept row counting too many; an event folded twice, a row counting too
      many. Then the run rebuilds every row, as a full refresh does. So the result is what
      a full refresh gives; only its cost depends on what changed.

    What it assumes, as the watermarks and the scoped key checks do (scripts/run/
    key_checks.py): dbt runs and loads do not overlap, and the clock that stamps rows does
    not go back. A dedupe run stamped before this table's last build but written after
    it (a clock stepped back, two overlapping runs on PostgreSQL) is not among the
    gained rows, and if it moved an event between two kept people the totals still
    agree. After such a clock correction, run this model once with --full-refresh.

    When as_of goes back (a replay), the people with events between the two moments keep
    rows that count too many, so the check rebuilds everyone. The whole summary is also
    rebuilt when the build clock is not past the previous build, when the summary's
    definition changed (summary_fingerprint: the aggregates, the merges and the filter,
    as rendered, so a change to var('engagement_channels') counts), on --full-refresh,
    in a unit test, and on Spark (which cannot read a table while replacing it).

    The previous build's stamp and as_of are looked up when the model runs and written
    into its SQL as constants, so that DuckDB skips the blocks of events written and
    occurred before them (min/max per row group) instead of reading every row. The check
    is in the SQL, not in Jinja, so that one query serves both paths: the full rebuild's
    branch is filtered by a one-row condition that DuckDB and PostgreSQL evaluate first,
    and costs nothing when not taken (measured: 5 ms).

    Bookkeeping columns: event_count, summarised_at (when the row was last computed; a
    kept row keeps its own), summarised_as_of, summary_fingerprint.
#}
{% macro summarised_per_person(events, columns, aggregates, where=none) %}
    {%- set names = columns.keys() | list -%}
    {%- for name, merge in columns.items() if merge not in ('max', 'min') -%}
        {{ exceptions.raise_compiler_error(
            "summarised_per_person: column " ~ name ~ " merges with '" ~ merge
            ~ "'; only max and min merge partial results exactly"
        ) }}
    {%- endfor -%}
    {%- set fingerprint = local_md5(
        aggregates ~ '|' ~ columns | tojson ~ '|' ~ (where or '')
    ) -%}
    {%- set counted -%}
        person_id is not null
        and occurred_at <= {{ as_of_timestamp() }}
        {%- if where %}
        and {{ where }}
        {%- endif %}
    {%- endset -%}
    {%- set bookkeeping = ['event_count', 'summarised_at', 'summarised_as_of', 'summary_fingerprint'] -%}

    {%- set found = namespace(previous=none) -%}
    {%- if execute and model.resource_type != 'unit_test' and not flags.FULL_REFRESH
        and target.type != 'spark' -%}
        {%- set found.previous = load_relation(this) -%}
        {%- if found.previous is not none -%}
            {%- set held = adapter.get_columns_in_relation(found.previous)
                | map(attribute='name') | map('lower') | list -%}
            {%- for column in names + bookkeeping if column | lower not in held -%}
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
            {#- The check's total, counted before the query rather than in it: a
                filtered scan that the count shares with the rebuilds is one DuckDB may
                materialize for all of them (int_people_subscription_state says what
                that cost). Nothing writes the events between the two (builds and
                loads do not overlap). -#}
            {%- set events_counted = run_query(
                'select count(*) from ' ~ events ~ ' where ' ~ counted
            ).rows[0][0] -%}
        {%- endif -%}
    {%- endif -%}

    {#- A row this run computed, in the kept rows' column order. -#}
    {%- set computed_now -%}
        person_id, {{ names | join(', ') }}, event_count,
        {{ run_started_timestamp() }} as summarised_at
    {%- endset -%}

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
            {{ names | join(', ') }},
            event_count,
            summarised_at

        from {{ previous }}

    ),

    {#-
        The people who may have lost a counted event since: the person a rewritten row
        had before (re-resolved to someone else, or replaced by another copy, whose
        values may differ). Rebuilt from all their events.
    #}
    lost as (

        select distinct previous_person_id as person_id

        from {{ events }}

        where
            deduplicated_at > {{ last_summarised_at }}
            and previous_person_id is not null
            {%- if where %}
            and {{ where }}
            {%- endif %}

    ),

    {#- The events counted now that the previous build did not count. #}
    gained as (

        select
            person_id,
            {{ aggregates }},
            count(*) as event_count

        from {{ events }}

        where
            {{ counted }}
            and (
                deduplicated_at > {{ last_summarised_at }}
                or occurred_at > {{ last_as_of }}
            )

        group by person_id

    ),

    rebuilt_for_lost as (

        select
            person_id,
            {{ aggregates }},
            count(*) as event_count

        from {{ events }}

        where
            {{ counted }}
            and person_id in (select person_id from lost)

        group by person_id

    ),

    {#- The kept rows of the people who gained events, merged with what they gained. #}
    merged as (

        select
            person_id,
            {%- for name, merge in columns.items() %}
            {{ merge }}({{ name }}) as {{ name }},
            {%- endfor %}
            sum(event_count) as event_count,
            max(summarised_at) as summarised_at

        from (

            select previous_build.*

            from previous_build

            inner join gained
                on previous_build.person_id = gained.person_id

            union all

            select {{ computed_now }} from gained

        ) as kept_and_gained

        group by person_id

    ),

    {#- Everyone's row: kept, merged, or rebuilt for the people who lost an event. #}
    kept_and_rebuilt as (

        select all_people.*

        from (

            select previous_build.*

            from previous_build

            left join gained
                on previous_build.person_id = gained.person_id

            where gained.person_id is null

            union all

            select * from merged

        ) as all_people

        left join lost
            on all_people.person_id = lost.person_id

        where lost.person_id is null

        union all

        select {{ computed_now }} from rebuilt_for_lost

    ),

    check_passed as (

        select
            coalesce(
                {{ last_summarised_at }} < {{ run_started_timestamp() }}
                and (select coalesce(sum(event_count), 0) from kept_and_rebuilt)
                = {{ events_counted }},
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
            {{ names | join(', ') }},
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
