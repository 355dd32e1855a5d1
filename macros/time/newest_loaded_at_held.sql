{#
    The newest loaded_at the incremental model being built already holds, as a scalar
    subquery: a run takes the rows loaded after it (arrival, not event time, so late events
    land and a backfill is processed once). An empty table (built before any load) gives
    1900-01-01, so that it never stops every later run.
#}
{% macro newest_loaded_at_held() -%}
    (
        select coalesce(max(loaded_at), cast('1900-01-01' as {{ dbt.type_timestamp() }}))
        from {{ this }}
    )
{%- endmacro %}
