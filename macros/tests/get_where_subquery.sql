{#
    dbt's hook for a data test's `where` config, extended with one placeholder:
    `__keys_loaded_recently__`. On a full check (var data_tests_scope: all, the default)
    it is `1 = 1`, so the test reads every row. On a scheduled tick (data_tests_scope:
    recent, which `audiences run` passes) it keeps the rows whose key (the test's column)
    appears among the rows loaded in the last `data_tests_recent_days` days before the
    newest load the model holds: a duplicate between a new row and an old one is still
    caught, while the tick does not group the whole history by key on every run.
    Overriding this macro is dbt's documented way to give `where` values computed at run
    time: https://docs.getdbt.com/reference/resource-configs/where
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__keys_loaded_recently__' in where -%}
            {%- set where = where | replace(
                '__keys_loaded_recently__', keys_loaded_recently(relation)
            ) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
