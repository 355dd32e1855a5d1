{#
    Stops the build on a wrong audience argument, naming the audience model and the
    argument. The audience macros validate every value that reaches SQL other than as a
    quoted literal (a number, a boolean that decides which SQL is written, a column-name
    part), so configuration cannot compile into other SQL: "72 or true", or "false" read as
    a truthy string.
#}
{% macro audience_argument_error(name, expected, value) -%}
    {#- Parsing renders with placeholder context (no meta yet); the check runs on execute. -#}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set where = model.name if model is defined and model is mapping else 'an audience' -%}
    {%- set shown = ('"' ~ value ~ '"') if value is string else (value | string) -%}
    {{ exceptions.raise_compiler_error(
        "audience " ~ where ~ ": argument " ~ name ~ " must be " ~ expected ~ ", got "
        ~ shown[:80]
    ) }}
{%- endmacro %}
