{# An audience argument that reaches SQL as a number: a number >= minimum, or an error. #}
{% macro audience_number(value, name, minimum=0) -%}
    {%- if value is boolean or value is not number or value < minimum -%}
        {{ audience_argument_error(name, 'a number >= ' ~ minimum, value) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}
