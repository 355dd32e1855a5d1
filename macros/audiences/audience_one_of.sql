{# An audience argument that must be one of a fixed vocabulary (e.g. a column-name part). #}
{% macro audience_one_of(value, name, allowed) -%}
    {%- if value is not string or value not in allowed -%}
        {{ audience_argument_error(name, 'one of ' ~ (allowed | join(', ')), value) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}
