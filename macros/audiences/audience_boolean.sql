{#
    An audience argument that decides which SQL is written: true or false, nothing else
    (the string "false" would otherwise count as true).
#}
{% macro audience_boolean(value, name) -%}
    {%- if value is not sameas true and value is not sameas false -%}
        {{ audience_argument_error(name, 'true or false', value) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}
