{#
    The moment every time-relative model measures from, as a SQL timestamp literal (UTC).
    `--vars '{as_of: "2026-03-01T00:00:00Z"}'` reproduces audiences exactly as they were;
    without it we use the run's start, so all models of one run share one "now".
#}
{% macro as_of_timestamp() -%}
    {%- set raw = var('as_of', none) -%}
    {%- if raw is none or raw == '' -%}
        {%- set text = run_started_at.strftime('%Y-%m-%d %H:%M:%S') -%}
    {%- else -%}
        {%- set text = (raw | string) | replace('T', ' ') | replace('Z', '') -%}
        {%- if '+' in text -%}{%- set text = text.split('+')[0] -%}{%- endif -%}
    {%- endif -%}
    cast('{{ text }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}
