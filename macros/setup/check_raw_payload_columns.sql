{#
    on-run-start, after create_raw_tables_if_missing: a raw table an earlier version
    created lacks the payload columns (raw_payload_columns) until a loader of this version
    runs once on it; the loader adds them and fills them from the rows' own payloads
    (scripts/loaders/bulk.py). Say so, with the command, rather than let a staging model
    fail on a missing column; an empty table (every earlier version's on-run-start made
    all four, used or not) just gets the columns, committed here. A hook of its own: its
    look at the catalog opens a transaction that dbt rolls back after the hook, which must
    not undo the tables the hook before it created.
#}
{% macro check_raw_payload_columns() %}
    {#- Spark's raw tables are written whole by whoever fills them (no loaders there). -#}
    {%- if not execute or target.type == 'spark' -%}{{ return('') }}{%- endif -%}
    {%- set loaders = {
        'raw_customerio.webhook_events': 'webhooks',
        'raw_customerio_segment.tracks': 'segment-events',
    } -%}
    {%- for relation, expected in raw_payload_columns().items() -%}
        {%- set schema, name = relation.split('.') -%}
        {%- set existing = adapter.get_relation(
            database=target.database, schema=schema, identifier=name
        ) -%}
        {%- if existing is not none -%}
            {%- set have = adapter.get_columns_in_relation(existing)
                | map(attribute='name') | map('lower') | list -%}
            {%- set lacking = expected | reject('in', have) | list -%}
            {%- set has_rows = run_query(
                'select 1 from ' ~ existing ~ ' limit 1'
            ).rows | length > 0 if lacking else false -%}
            {%- if lacking and not has_rows -%}
                {#- Empty (an earlier version's on-run-start made it): nothing to fill. -#}
                {%- for column in lacking -%}
                    {%- do run_query(
                        'alter table ' ~ existing ~ ' add column ' ~ column ~ ' '
                        ~ dbt.type_string()
                    ) -%}
                {%- endfor -%}
                {%- do adapter.commit() -%}
            {%- elif lacking -%}
                {{ exceptions.raise_compiler_error(
                    relation ~ ' was created by an earlier version and lacks the columns '
                    ~ 'copied from each payload (' ~ (lacking | join(', ')) ~ '). Run '
                    ~ '`audiences load ' ~ loaders[relation] ~ ' <your landing folder>` '
                    ~ 'once: it adds them and fills them from the payloads already loaded.'
                ) }}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return('') }}
{% endmacro %}
