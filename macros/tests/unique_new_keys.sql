{#
    Generic test: dbt's `unique`, for the big tables that only change by writing rows (the
    raw events behind staging, the incremental event models), scoped to what changed.

    `written_at` is the column each write stamps (the loader's loaded_at, or a model's run
    stamp). When the environment variable AUDIENCES_KEYS_VERIFIED_BEFORE holds a timestamp
    (UTC), the test checks only the keys of rows written at or after it, each against the
    whole table. That is enough: two rows share a key only if one of them was written after
    the last check that passed, and a full refresh restamps every row. `audiences run` sets the
    variable to the start of the last build whose key checks all passed (the reasoning is in
    scripts/run/key_checks.py); a failed check does not move it, so the next tick checks
    the same keys again. Without the variable (`dbt build` by hand, CI) every key is
    checked, as `unique` does.

    The cost: a semi-join of the table's key column against the new keys, about 0.2 s over
    12.6 M events against 1.4-2.5 s for grouping every key.

    `key_second_column` (optional): a timestamp whose second the key includes
    (int_message_events_deduplicated: delivery, channel, metric and second). A row with a
    new row's key then occurred in that row's second, so the scoped check reads only the
    rows from the earliest second among the new rows on, and DuckDB skips the row groups
    that end before it (as the dedupe's delete does, macros/incremental/
    get_incremental_delete_insert_from_second_sql.sql): a tick's new rows reach back a
    few days or months, not over the whole history.
#}
{% test unique_new_keys(model, column_name, written_at, key_second_column=none) %}

{#- Read only when the test runs: read at parse time, dbt would re-parse on each change. -#}
{%- set verified_before = env_var('AUDIENCES_KEYS_VERIFIED_BEFORE', '') if execute else '' -%}
{%- if verified_before -%}
    {#- Parsed, never pasted: the value ends up inside SQL. -#}
    {%- set pattern = '\\d{4}-\\d\\d-\\d\\d[ T]\\d\\d:\\d\\d:\\d\\d(\\.\\d{1,6})?' -%}
    {%- if not modules.re.fullmatch(pattern, verified_before) -%}
        {{ exceptions.raise_compiler_error(
            "AUDIENCES_KEYS_VERIFIED_BEFORE must be a UTC timestamp such as "
            ~ "'2026-12-03 06:00:00', not '" ~ verified_before ~ "'"
        ) }}
    {%- endif -%}
    {%- set verified_before = modules.datetime.datetime.fromisoformat(verified_before) -%}
{%- endif %}

with

{% if verified_before %}
    new_keys as (

        select
            {{ column_name }}
            {%- if key_second_column %},
            {{ key_second_column }}
            {%- endif %}

        from {{ model }}

        {# At or after: a row stamped at the very microsecond of the mark is rechecked. #}
        where {{ written_at }} >= cast(
            '{{ verified_before.strftime("%Y-%m-%d %H:%M:%S.%f") }}'
            as {{ dbt.type_timestamp() }}
        )

    ),

{% endif %}
grouped as (

    select
        {{ column_name }} as unique_field,
        count(*) as n_records

    from {{ model }}

    where
        {{ column_name }} is not null
        {% if verified_before %}
            and {{ column_name }} in (select {{ column_name }} from new_keys)
            {%- if key_second_column %}
            and {{ key_second_column }} >= (
                select min({{ dbt.date_trunc('second', key_second_column) }})
                from new_keys
            )
            {%- endif %}
        {% endif %}

    group by {{ column_name }}

)

select * from grouped
where n_records > 1

{% endtest %}
