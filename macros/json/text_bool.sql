{#
    A JSON boolean already extracted as text ('true' / 'false') as a SQL boolean, keeping
    "absent" as null: Customer.io's machine-open flags are missing on older data and null
    must mean "unknown", not false.
#}
{% macro text_bool(text_value) -%}
    case lower({{ text_value }})
        when 'true' then true
        when 'false' then false
    end
{%- endmacro %}
