{#
    An 8-byte floating-point type on every warehouse. dbt.type_float() is not one: it
    renders `float`, which is 4 bytes on DuckDB and Spark, too coarse for interval maths
    on small rates (1 / n^2 at n = 10,000 is 1e-8).
#}
{% macro type_double() -%}
    {{ return('double' if target.type == 'spark' else 'double precision') }}
{%- endmacro %}
