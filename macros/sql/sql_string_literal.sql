{#
    Any value as one SQL string literal, so configuration (a macro argument, YAML meta) can
    never end the literal and add SQL of its own. ANSI SQL doubles a single quote inside a
    literal (DuckDB, PostgreSQL with standard_conforming_strings, its default since 9.1);
    Spark SQL reads a backslash as an escape instead, so there both are backslash-escaped
    (https://spark.apache.org/docs/latest/sql-ref-literals.html#string-literal).
#}
{% macro sql_string_literal(value) -%}
    {{ return(adapter.dispatch('sql_string_literal', 'engagement_audiences')(value)) }}
{%- endmacro %}

{% macro default__sql_string_literal(value) -%}
    {{ return("'" ~ (value | string | replace("'", "''")) ~ "'") }}
{%- endmacro %}

{% macro spark__sql_string_literal(value) -%}
    {{ return("'" ~ (value | string | replace("\\", "\\\\") | replace("'", "\\'")) ~ "'") }}
{%- endmacro %}
