{#
    The text value at a path inside a JSON column, on every warehouse we support.
    dbt ships no cross-database JSON macro, so we dispatch: DuckDB's json_extract_string,
    PostgreSQL's #>> operator on jsonb, Spark's get_json_object.
    path: a list of keys, e.g. ['data', 'identifiers', 'email'].
#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text', 'engagement_audiences')(column, path)) }}
{%- endmacro %}

{% macro default__json_text(column, path) -%}
    json_extract_string({{ column }}, '$.{{ path | join(".") }}')
{%- endmacro %}

{% macro postgres__json_text(column, path) -%}
    ({{ column }} #>> '{ {{- path | join(",") -}} }')
{%- endmacro %}

{% macro spark__json_text(column, path) -%}
    get_json_object({{ column }}, '$.{{ path | join(".") }}')
{%- endmacro %}
