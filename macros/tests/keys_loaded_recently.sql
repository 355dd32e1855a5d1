{#
    The filter behind a test's `where: __keys_loaded_recently__` (get_where_subquery.sql):
    `1 = 1` on a full check; on a tick (var data_tests_scope: recent), the rows sharing
    the test's column value with a row loaded within data_tests_recent_days of the newest
    load. Relative to the model's own newest load, not the clock, so a replay with an
    old as_of or a late scheduler checks the same rows.
#}
{% macro keys_loaded_recently(relation) -%}
    {%- set scope = var('data_tests_scope') -%}
    {%- if scope not in ['all', 'recent'] -%}
        {{ exceptions.raise_compiler_error(
            "data_tests_scope must be all or recent, got '" ~ scope ~ "'"
        ) }}
    {%- endif -%}
    {%- set column = model.test_metadata.kwargs.column_name
        if model.test_metadata is defined and model.test_metadata else none -%}
    {%- if scope == 'all' or not column -%}
        1 = 1
    {%- else -%}
        {{ column }} in (
            select {{ column }} from {{ relation }}
            where loaded_at >= (
                select {{ dbt.dateadd('day', -var('data_tests_recent_days'), 'max(loaded_at)') }}
                from {{ relation }}
            )
        )
    {%- endif -%}
{%- endmacro %}
