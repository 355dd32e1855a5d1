{#
    A deterministic text key from several columns (our stand-in for dbt_utils'): nulls become
    a marker so (null, 'a') and ('a', null) differ, and the separator keeps ('ab','c') apart
    from ('a','bc').
#}
{% macro generate_surrogate_key(field_list) -%}
    {%- set parts = [] -%}
    {%- for field in field_list -%}
        {%- do parts.append(
            "coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '_null_')"
        ) -%}
        {%- if not loop.last -%}{%- do parts.append("'-|-'") -%}{%- endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}
