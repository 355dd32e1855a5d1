{#
    The wall-clock start of this dbt invocation as a SQL timestamp literal (UTC, to the
    microsecond), the same in every model of the run. Incremental models stamp the rows they
    write with it so a later run can tell what changed since (as_of is the business clock;
    this is the build clock).
#}
{% macro run_started_timestamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}
