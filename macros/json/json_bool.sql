{#
    A JSON boolean at a path as a SQL boolean, keeping "absent" as null: Customer.io's
    machine-open flags are missing on older data and null must mean "unknown", not false.
#}
{% macro json_bool(column, path) -%}
    case lower({{ json_text(column, path) }})
        when 'true' then true
        when 'false' then false
    end
{%- endmacro %}
