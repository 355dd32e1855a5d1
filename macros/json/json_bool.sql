{#
    A JSON boolean at a path as a SQL boolean, null when absent (see text_bool).
#}
{% macro json_bool(column, path) -%}
    {{ text_bool(json_text(column, path)) }}
{%- endmacro %}
