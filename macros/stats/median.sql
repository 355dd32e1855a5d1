{#
    The median of `expression` as an aggregate, on every warehouse: the SQL-standard
    ordered-set aggregate (DuckDB, PostgreSQL), Spark's percentile elsewhere. Nulls are
    ignored.
#}
{% macro median(expression) -%}
    {%- if target.type == 'spark' -%}
        percentile({{ expression }}, 0.5)
    {%- else -%}
        percentile_cont(0.5) within group (order by {{ expression }})
    {%- endif -%}
{%- endmacro %}
