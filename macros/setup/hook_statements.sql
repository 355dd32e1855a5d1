{#
    Several SQL statements as the body of one on-run-* hook. DuckDB and PostgreSQL run a
    `;`-separated script in one call; Spark parses one statement per call (a second one is
    PARSE_SYNTAX_ERROR), so on Spark each statement runs here, while the hook compiles, and
    the hook itself is left empty. Spark has no transactions, so nothing is left open.
#}
{% macro hook_statements(statements) -%}
    {{ return(adapter.dispatch('hook_statements', 'engagement_audiences')(statements)) }}
{%- endmacro %}

{% macro default__hook_statements(statements) -%}
    {{ return(statements | join(';\n') ~ ';') }}
{%- endmacro %}

{% macro spark__hook_statements(statements) -%}
    {%- for statement in statements -%}
        {%- do run_query(statement) -%}
    {%- endfor -%}
    {{ return('') }}
{%- endmacro %}
