{#
    The moment every time-relative model measures from, as a SQL timestamp literal (UTC).
    `--vars '{as_of: "2026-03-01T00:00:00Z"}'` reproduces audiences exactly as they were;
    without it we use the run's start, so all models of one run share one "now".
#}
{% macro as_of_timestamp() -%}
    cast('{{ as_of_datetime().strftime('%Y-%m-%d %H:%M:%S') }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}
