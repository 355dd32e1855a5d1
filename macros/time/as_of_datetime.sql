{#
    The `as_of` var as a naive UTC datetime (the run's start when unset), for macros that
    must reason about the moment in Jinja rather than in SQL. as_of_timestamp() renders it.
#}
{% macro as_of_datetime() -%}
    {%- set raw = var('as_of', none) -%}
    {%- if raw is none or raw == '' -%}
        {%- set parsed = run_started_at -%}
    {%- else -%}
        {#- ISO 8601 with Z or any offset, or a date; an offset is converted to UTC. -#}
        {%- set parsed = modules.datetime.datetime.fromisoformat(
            (raw | string) | replace('Z', '+00:00')
        ) -%}
    {%- endif -%}
    {%- if parsed.tzinfo is not none -%}
        {%- set parsed = parsed.astimezone(modules.pytz.utc).replace(tzinfo=none) -%}
    {%- endif -%}
    {{ return(parsed.replace(microsecond=0)) }}
{%- endmacro %}
