{#
    True for a run started with --empty (dbt reads every ref and source as zero rows, to
    check the SQL and the schemas): models that keep history must not write it, since
    their history would then be built from nothing. False in a unit test, even one that
    `dbt build --empty` runs: a unit test's inputs are its given rows, never read as zero
    rows, so the model must behave as in a real run for its expectations to hold.
#}
{% macro is_empty_run() -%}
    {{ return(flags.EMPTY is sameas true and model.resource_type != 'unit_test') }}
{%- endmacro %}
