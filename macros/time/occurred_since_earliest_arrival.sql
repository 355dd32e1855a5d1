{#
    A condition on the held rows of an incremental model keyed by the second an event
    occurred (the dedupe's message_event_id includes date_trunc('second', occurred_at)):
    true for every held row that can share a key with an arriving row, the rows of
    `arrivals` loaded after `loaded_after`.

    A held row with an arrival's key occurred in the same second as that arrival, so at or
    after the earliest arrival's second; the rest of the history cannot match. Looked up
    when the model runs and written into its SQL as a constant, like the loaded_at
    watermark (macros/time/newest_loaded_at_held.sql), so that DuckDB skips the held
    blocks that occurred before it (min/max per row group). At a year of a 200k-customer
    brand a daily tick's arrivals reach back a few days: the dedupe's check of which
    arrivals already landed read 4 of 103 row groups instead of all 12.6 M keys (0.35 s
    to 0.09 s, a fifth of the CPU).

    No filter when it cannot be trusted or there is nothing to look up: outside a run, in
    a unit test (its `this` is a fixture), when an arrival has no occurred_at (its key
    holds '_null_' and matches only rows without one), or when the time has a zone (an
    offset would be dropped). With no arrivals, nothing can match.

    Like the watermark, it assumes that no load commits while the model runs (README:
    builds and loads must not overlap; DuckDB's one writer enforces it, PostgreSQL does
    not). A row committed between this lookup and the model's query is missing from the
    lookup, and if it is a worse copy of an event held from before the bound, it
    replaces the better copy.
#}
{% macro occurred_since_earliest_arrival(column, arrivals, loaded_after) -%}
    {%- if not execute or model.resource_type == 'unit_test' -%}
        1 = 1
    {%- else -%}
        {%- set found = run_query(
            'select min(' ~ column ~ '), count(*) - count(' ~ column ~ '), count(*) from '
            ~ arrivals ~ ' where loaded_at > ' ~ loaded_after
        ).rows[0] -%}
        {%- set earliest, without_time, arriving = found[0], found[1], found[2] -%}
        {%- if arriving == 0 -%}
            1 = 0
        {%- elif without_time > 0 or earliest is none or earliest.tzinfo is not none -%}
            1 = 1
        {%- else -%}
            {{ column }} >= cast('{{ earliest.strftime('%Y-%m-%d %H:%M:%S') }}' as {{ dbt.type_timestamp() }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
