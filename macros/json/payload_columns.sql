{#
    The payload's values a staging model reads, as a select-list fragment
    "<value> as <name>, ..." for one raw table (relation: 'schema.table', a key of
    raw_payload_columns()). Where the loaders land them (DuckDB, PostgreSQL) they are
    columns of the raw table, parsed once when the row arrived; on Spark, whose raw tables
    keep their original shape, each is taken from the payload with json_text.
#}
{% macro payload_columns(relation) -%}
    {%- set fields = raw_payload_columns()[relation] -%}
    {%- for name, path in fields.items() %}
        {% if target.type == 'spark' -%}
            {{ json_text('payload', path) }} as {{ name }}
        {%- else -%}
            {{ name }}
        {%- endif %}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}
