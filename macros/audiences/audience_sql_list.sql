{#
    A Jinja list as a SQL list of quoted string literals, for `in (...)` filters on the
    string-typed id and enum columns. Each value goes through sql_string_literal, so a
    value cannot end its literal early. A single string is refused: it would otherwise be
    read character by character.
#}
{% macro audience_sql_list(values) -%}
    {%- if values is string or values is mapping or values is not iterable -%}
        {{ audience_argument_error('values', 'a list', values) }}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}
        {%- do quoted.append(sql_string_literal(value)) -%}
    {%- endfor -%}
    {{ quoted | join(', ') }}
{%- endmacro %}
