{#
    Unix seconds (Customer.io's timestamps) to a UTC timestamp, with dbt's portable dateadd
    instead of an engine's to_timestamp().
#}
{% macro epoch_to_timestamp(seconds_expression) -%}
    {{ dbt.dateadd(
        'second',
        'cast(' ~ seconds_expression ~ ' as ' ~ dbt.type_bigint() ~ ')',
        "cast('1970-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")"
    ) }}
{%- endmacro %}
