{#
    One row per person summarising their message events up to as_of, for a model that
    would otherwise group every event of the history by person on every run
    (int_people_engagement, int_people_subscription_state). It configures the model it
    is called in: incremental, delete+insert by person (a table on Spark).
    - `aggregates`: the aggregate select list over the events' columns;
    - `columns`: the names it defines, each with how two partial results merge: `max` or
      `min` (a mapping, read by name, so its order need not match);
    - `where`: an optional condition on the events, beside "has a person, by as_of";
    - `derived`: the SQL the model computes from these columns in the rows it writes (such
      as int_people_subscription_state's states). Those values are kept with each row, so
      they are part of the definition: a change to them rebuilds everyone, as a change to
      the aggregates does, instead of leaving the kept rows on the old logic.

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
    - what is written: the merged and rebuilt rows alone (or every row, when the check
      failed), by delete+insert on person_id; the kept rows are not touched. A person
      whose row goes (a lost person with no counted event left; when the check failed,
      anyone held with none) is written as a row counting none, a tombstone: its
      delete removes their old row, and the model's post-hook deletes the tombstone, in
      the same transaction. Writing a tick's 4,000 people instead of all 177,000
      halved the two nodes (0.45 and 0.3-0.45 s to about 0.25 s each).

    What it assumes, as the watermarks and the scoped key checks do (scripts/run/
    key_checks.py): dbt runs and loads do not overlap, and the clock that stamps rows does
    not go back. A dedupe run stamped before this table's last build but written after
    it (a clock stepped back, two overlapping runs on PostgreSQL) is not among the
    gained rows, and if it moved an event between two kept people the totals still
    agree. After such a clock correction, run this model once with --full-refresh.

    When as_of goes back (a replay), the people with events between the two moments keep
    rows that count too many, so the check rebuilds everyone. The whole summary is also
    rebuilt when the build clock is not past the previous build, when the summary's
    definition changed (summary_fingerprint: the aggregates, the merges, the filter and
    what the model derives, as rendered, so a change to var('engagement_channels')
    counts), on --full-refresh,
    in a unit test, and on Spark (which cannot read a table while replacing it, nor
    delete from it). When the held table cannot be merged into, everyone is rebuilt
    and the held people with no counted event get tombstones.

    The previous build's stamp and as_of are looked up when the model runs and written
    into its SQL as constants, so that DuckDB skips the blocks of events written and
    occurred before them (min/max per row group) instead of reading every row. The check
    is in the SQL, not in Jinja, so that one query serves both paths: the full rebuild's
    branch is filtered by a one-row condition that DuckDB and PostgreSQL evaluate first,
    and costs nothing when not taken (measured: 5 ms).

    Bookkeeping columns: event_count, summarised_at and summarised_as_of (the run that
    last computed the row, and its as_of; a kept row keeps its own), summary_fingerprint.
    The previous build is the newest stamp in the table, the last run that wrote a row,
    with the as_of of the rows it wrote (kept rows may carry a later as_of, from before
    a replay). A run after it that wrote nothing gained and lost nothing, so it left the
    table as that build did, and folding in from that build's stamp and as_of counts the
    same events.
#}
{% macro summarised_per_person(events, columns, aggregates, where=none, derived=none) %}
    {%- set names = columns.keys() | list -%}
    {%- for name, merge in columns.items() if merge not in ('max', 'min') -%}
        {{ exceptions.raise_compiler_error(
            "summarised_per_person: column " ~ name ~ " merges with '" ~ merge
            ~ "'; only max and min merge partial results exactly"
        ) }}
    {%- endfor -%}
    {#- Written as its changed rows, tombstones included (see above). -#}
    {%- if target.type == 'spark' -%}
        {{ config(materialized='table') }}
    {%- else -%}
        {{ config(
            materialized='incremental',
            unique_key='person_id',
            incremental_strategy='delete+insert',
            on_schema_change='sync_all_columns',
            post_hook='delete from {{ this }} where event_count = 0',
        ) }}
    {%- endif -%}
    {%- set fingerprint = local_md5(
        aggregates ~ '|' ~ columns | tojson ~ '|' ~ (where or '') ~ '|' ~ (derived or '')
    ) -%}
    {%- set counted -%}
        person_id is not null
        and occurred_at <= {{ as_of_timestamp() }}
        {%- if where %}
        and {{ where }}
        {%- endif %}
    {%- endset -%}
    {%- set bookkeeping = ['event_count', 'summarised_at', 'summarised_as_of', 'summary_fingerprint'] -%}

    {#- held: the table to write into (none: a new table); previous: its rows, if they
        can be merged into (written by this definition, with every column it needs). -#}
    {%- set found = namespace(held=none, previous=none) -%}
    {%- if execute and model.resource_type != 'unit_test' and is_incremental() -%}
        {%- set found.held = this -%}
        {%- set found.previous = this -%}
        {%- set held_columns = adapter.get_columns_in_relation(this)
            | map(attribute='name') | map('lower') | list -%}
        {%- for column in names + bookkeeping if column | lower not in held_columns -%}
            {#- Written by an older release or another var('engagement_channels'). -#}
            {%- set found.previous = none -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set held = found.held -%}
    {%- set previous = found.previous -%}
    {%- if previous is not none -%}
        {#- The previous build: the newest stamp, and the as_of of the rows it wrote
            (rows kept from an earlier run keep theirs, which may be later). -#}
        {%- set last = run_query(
            'select (select max(summarised_at) from ' ~ previous ~ '), '
            ~ '(select max(summarised_as_of) from ' ~ previous
            ~ ' where summarised_at = (select max(summarised_at) from ' ~ previous ~ ')), '
            ~ '(select min(summary_fingerprint) from ' ~ previous ~ '), '
            ~ '(select max(summary_fingerprint) from ' ~ previous ~ ')'
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

    {#- A row this run computed, in the previous rows' column order. -#}
    {%- set computed_now -%}
        person_id, {{ names | join(', ') }}, event_count,
        {{ run_started_timestamp() }} as summarised_at
    {%- endset -%}

    {#- The events counted, grouped per person; each use adds a condition and the
        grouping. A rebuilt row is read by name (`computed_now`): the aggregates may
        define the columns in another order than `columns`. -#}
    {%- set rebuilt -%}
        select
            person_id,
            {{ aggregates }},
            count(*) as event_count

        from {{ events }}

        where
            {{ counted }}
    {%- endset -%}

    {%- if held is none %}
    {#- A new table, a full refresh, a unit test, Spark. -#}
    with

    written as (

        select {{ computed_now }}

        from (

            {{ rebuilt }}

            group by person_id

        ) as rebuilt_people

    )
    {%- else %}
    {%- if previous is none %}
    {#- The held rows cannot be merged into: everyone is rebuilt, and whoever held a row
        but has no counted event now loses it. -#}
    with

    summarised as (

        select {{ computed_now }}

        from (

            {{ rebuilt }}

            group by person_id

        ) as rebuilt_people

    ),

    removed as (

        select held.person_id

        from {{ held }} as held

        left join summarised
            on held.person_id = summarised.person_id

        where summarised.person_id is null

    ),
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

        {{ rebuilt }}
            and (
                deduplicated_at > {{ last_summarised_at }}
                or occurred_at > {{ last_as_of }}
            )

        group by person_id

    ),

    {#- The previous rows of the people who gained events, merged with what they gained. #}
    merged as (

        select
            person_id,
            {%- for name, merge in columns.items() %}
            {{ merge }}({{ name }}) as {{ name }},
            {%- endfor %}
            cast(sum(event_count) as {{ dbt.type_bigint() }}) as event_count,
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

    {#- The rows that change: merged, or rebuilt for the people who lost an event. #}
    changed as (

        select merged.*

        from merged

        left join lost
            on merged.person_id = lost.person_id

        where lost.person_id is null

        union all

        select {{ computed_now }}

        from (

            {{ rebuilt }}
                and person_id in (select person_id from lost)

            group by person_id

        ) as rebuilt_people

    ),

    {#-
        The table after this run must count every event counted now: the rows kept,
        less the previous rows of the people it rewrites, plus their new rows.
    #}
    check_passed as (

        select
            coalesce(
                {{ last_summarised_at }} < {{ run_started_timestamp() }}
                and (select coalesce(sum(event_count), 0) from previous_build)
                - (
                    select coalesce(sum(event_count), 0)

                    from previous_build

                    where
                        person_id in (select person_id from gained)
                        or person_id in (select person_id from lost)
                )
                + (select coalesce(sum(event_count), 0) from changed)
                = {{ events_counted }},
                false
            ) as is_passed

    ),

    rebuilt_in_full as (

        select {{ computed_now }}

        from (

            {{ rebuilt }}
                and not (select is_passed from check_passed)

            group by person_id

        ) as rebuilt_people

    ),

    summarised as (

        select * from changed

        where (select is_passed from check_passed)

        union all

        select * from rebuilt_in_full

    ),

    {#- Whose previous row goes without a new one: a lost person with no counted event
        left, or, when the check failed, anyone held who has none. -#}
    removed as (

        select to_remove.person_id

        from (

            select person_id

            from lost

            where (select is_passed from check_passed)

            union all

            select person_id

            from previous_build

            where not (select is_passed from check_passed)

        ) as to_remove

        left join summarised
            on to_remove.person_id = summarised.person_id

        where summarised.person_id is null

    ),
    {%- endif %}

    written as (

        select * from summarised

        union all

        {#- A tombstone (event_count 0): its delete+insert removes the person's row,
            the model's post-hook then the tombstone. #}
        select
            person_id,
            {%- for name in names %}
            null as {{ name }},
            {%- endfor %}
            cast(0 as {{ dbt.type_bigint() }}) as event_count,
            {{ run_started_timestamp() }} as summarised_at

        from removed

    )
    {%- endif %}

    select
        *,
        {{ as_of_timestamp() }} as summarised_as_of,
        '{{ fingerprint }}' as summary_fingerprint

    from written
{% endmacro %}
