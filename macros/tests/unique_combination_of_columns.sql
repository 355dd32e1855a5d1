{#
    Generic test: no two rows share the same values across `combination_of_columns`
    (our stand-in for dbt_utils'). Fails with one row per duplicated combination.
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

grouped as (

    select
        {{ combination_of_columns | join(', ') }},
        count(*) as count_rows

    from {{ model }}

    group by {{ combination_of_columns | join(', ') }}

)

select * from grouped
where count_rows > 1

{% endtest %}
