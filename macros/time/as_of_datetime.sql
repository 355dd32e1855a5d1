{#
    The `as_of` var as a naive UTC datetime (the run's start when unset), for macros that
    must reason about the moment in Jinja rather than in SQL. as_of_timestamp() renders it.
#}
{% macro as_of_datetime() -%}
    {%- set raw = var('as_of', none) -%}
    {%- if raw is none or raw == '' -%}
        {%- set parsed = run_started_at -%}
    {%- else -%}
        {#- ISO 8601 with Z or any offset, or a date; an offset is converted to UTC.
            The shape is checked first, as loosely as Python's fromisoformat reads it
            (basic or extended, any separator, week dates): its own error, "Invalid
            isoformat string", names neither the var nor a form that works. -#}
        {%- set text = (raw | string) | trim -%}
        {%- if not modules.re.match(
            '^\\d{4}-?(\\d{2}-?\\d{2}|W\\d{2}(-?\\d)?)'
            ~ '(.\\d{2}(:?\\d{2}(:?\\d{2}([.,]\\d+)?)?)?'
            ~ '([zZ]|[+-]\\d{2}(:?\\d{2}(:?\\d{2}([.,]\\d+)?)?)?)?)?$',
            text
        ) -%}
            {{ exceptions.raise_compiler_error(
                "as_of must be an ISO 8601 moment such as 2026-03-01T00:00:00Z, "
                ~ "2026-03-01T09:30:00+02:00 or 2026-03-01, not " ~ (raw | string)
            ) }}
        {%- endif -%}
        {%- set parsed = modules.datetime.datetime.fromisoformat(
            text | replace('Z', '+00:00') | replace('z', '+00:00')
        ) -%}
    {%- endif -%}
    {%- if parsed.tzinfo is not none -%}
        {%- set parsed = parsed.astimezone(modules.pytz.utc).replace(tzinfo=none) -%}
    {%- endif -%}
    {{ return(parsed.replace(microsecond=0)) }}
{%- endmacro %}
