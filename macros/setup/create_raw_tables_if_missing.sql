{#
    on-run-start: create the empty raw landing tables the loaders own (docs/warehouse-
    contracts.md) when a warehouse has not received that source yet, so a team that only
    uses webhooks, or CI on a fresh file, can still `dbt build`. Loaders create the same
    tables with the same columns and keys (scripts/loaders/bulk.py, api.py); whichever
    runs first wins and the other is a no-op, so the keys the loaders' upserts rely on
    (ON CONFLICT) must be declared here too: versioned tables everywhere, every table on
    PostgreSQL, none on Spark (no constraints on plain tables there).

    On PostgreSQL the three message tables also get an index on `_loaded_at`, created
    here (every build runs this hook, whoever created the table): each build reads only
    the rows loaded since the last one (`loaded_at > ` the newest held, in the dedupe
    and the identity combinations), and PostgreSQL reads the raw table whole for that
    without one (at 20 k customers, a year: the dedupe 15 s a tick, 3 s with it).
    DuckDB skips row groups by their min/max instead; Spark rebuilds in full.
#}
{% macro create_raw_tables_if_missing() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set json_type = {
        'postgres': 'jsonb',
        'spark': 'string',
        'duckdb': 'json using compression zstd',
    }.get(target.type, 'json') -%}
    {%- set text = dbt.type_string() -%}
    {%- set ts = dbt.type_timestamp() -%}
    {%- set big = dbt.type_bigint() -%}
    {%- set stamps = '_source_file ' ~ text ~ ', _source_line ' ~ big ~ ', _loaded_at ' ~ ts -%}
    {#-
        The payload's values the loaders copy into columns, as text (see that macro); not
        on Spark, whose raw tables keep their original shape.
    -#}
    {%- set copied = {} -%}
    {%- for relation, fields in raw_payload_columns().items() -%}
        {%- set columns = [] -%}
        {%- for name in fields if target.type != 'spark' -%}
            {%- do columns.append(', ' ~ name ~ ' ' ~ text) -%}
        {%- endfor -%}
        {%- do copied.update({relation: columns | join('')}) -%}
    {%- endfor -%}
    {%- set tables = {
        'raw_customerio.webhook_events':
            'event_id ' ~ text ~ ', object_type ' ~ text ~ ', metric ' ~ text
            ~ ', occurred_at ' ~ ts
            ~ copied['raw_customerio.webhook_events']
            ~ ', payload ' ~ json_type,
        'raw_customerio.api_messages':
            'delivery_id ' ~ text ~ ', message_type ' ~ text ~ ', created_at ' ~ ts
            ~ ', payload ' ~ json_type,
        'raw_customerio_segment.tracks':
            'message_id ' ~ text ~ ', event ' ~ text ~ ', user_id ' ~ text
            ~ ', anonymous_id ' ~ text ~ ', occurred_at ' ~ ts
            ~ copied['raw_customerio_segment.tracks']
            ~ ', payload ' ~ json_type,
        'raw_shop.orders':
            'order_id ' ~ text ~ ', customer_id ' ~ text ~ ', email ' ~ text
            ~ ', status ' ~ text ~ ', total_cents ' ~ big ~ ', currency ' ~ text
            ~ ', ordered_at ' ~ ts ~ ', updated_at ' ~ ts ~ ', payload ' ~ json_type,
    } -%}
    {#- relation: (key column, keyed on every engine rather than only PostgreSQL) -#}
    {%- set keys = {
        'raw_customerio.webhook_events': ('event_id', false),
        'raw_customerio.api_messages': ('delivery_id', true),
        'raw_customerio_segment.tracks': ('message_id', false),
        'raw_shop.orders': ('order_id', true),
    } -%}
    {%- set statements = [] -%}
    {%- for relation, columns in tables.items() -%}
        {%- set key, everywhere = keys[relation] -%}
        {%- set constraint = (
            ', primary key (' ~ key ~ ')'
            if target.type != 'spark' and (everywhere or target.type == 'postgres')
            else ''
        ) -%}
        {%- do statements.append('create schema if not exists ' ~ relation.split('.')[0]) -%}
        {%- do statements.append(
            'create table if not exists ' ~ relation
            ~ ' (' ~ columns ~ ', ' ~ stamps ~ constraint ~ ')'
        ) -%}
        {%- if target.type == 'postgres' and relation in (
            'raw_customerio.webhook_events', 'raw_customerio.api_messages',
            'raw_customerio_segment.tracks'
        ) -%}
            {%- do statements.append(
                'create index if not exists ' ~ relation.split('.')[1] ~ '__loaded_at on '
                ~ relation ~ ' (_loaded_at)'
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(hook_statements(statements)) }}
{% endmacro %}
