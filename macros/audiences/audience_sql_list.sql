{#
    A Jinja list as a SQL list of quoted string literals, for `in (...)` filters on the
    string-typed id and enum columns. Single quotes are doubled so a value cannot end the
    literal early.
#}
{% macro audience_sql_list(values) -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}
        {%- do quoted.append("'" ~ (value | string | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {{ quoted | join(', ') }}
{%- endmacro %}
