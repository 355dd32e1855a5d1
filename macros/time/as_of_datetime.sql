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
            The shape is checked first, as Python's fromisoformat reads it (basic or
            extended form, any separator, week dates, a space before the offset) and
            with months, days, hours and minutes in range: its own error, "Invalid
            isoformat string", names neither the var nor a form that works. -#}
        {%- set text = (raw | string) | trim -%}
        {%- set day = '(0[1-9]|[12][0-9]|3[01])' -%}
        {%- set month = '(0[1-9]|1[0-2])' -%}
        {%- set week = 'W(0[1-9]|[1-4][0-9]|5[0-3])' -%}
        {%- set date = (
            '([0-9]{4}-' ~ month ~ '-' ~ day ~ '|[0-9]{4}' ~ month ~ day
            ~ '|[0-9]{4}-' ~ week ~ '(-[1-7])?|[0-9]{4}' ~ week ~ '[1-7]?)'
        ) -%}
        {%- set hour = '([01][0-9]|2[0-3])' -%}
        {%- set time = (
            hour ~ '(:[0-5][0-9](:[0-5][0-9])?|[0-5][0-9]([0-5][0-9])?)?([.,][0-9]+)?'
        ) -%}
        {%- set zone = (
            '\\s*([zZ]|[+-]' ~ hour ~ '(:?[0-5][0-9](:?[0-5][0-9]([.,][0-9]+)?)?)?)'
        ) -%}
        {%- if not modules.re.match('^' ~ date ~ '(.' ~ time ~ '(' ~ zone ~ ')?)?$', text) -%}
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
