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
        {#- ISO 8601 with Z or any offset, or a date; an offset is converted to UTC. -#}
        {%- set parsed = modules.datetime.datetime.fromisoformat(
            (raw | string) | replace('Z', '+00:00')
        ) -%}
        {%- if parsed.tzinfo is not none -%}
            {%- set parsed = parsed.astimezone(modules.pytz.utc) -%}
        {%- endif -%}
        {%- set text = parsed.strftime('%Y-%m-%d %H:%M:%S') -%}
    {%- endif -%}
    cast('{{ text }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}
