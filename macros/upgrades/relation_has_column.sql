{#
    Whether a table in the warehouse has a column (case-insensitive), so that an
    incremental model can tell a table written by an older release, before a column
    existed, and bring its old rows up to date on its next run. True when it cannot be
    known: at parse time, and in a unit test, where `this` is a fixture's name (or none),
    not a table.
#}
{% macro relation_has_column(relation, column_name) %}
    {%- if not execute or relation is none or relation is string -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set names = adapter.get_columns_in_relation(relation)
        | map(attribute='name') | map('lower') | list -%}
    {{ return(column_name | lower in names) }}
{% endmacro %}
