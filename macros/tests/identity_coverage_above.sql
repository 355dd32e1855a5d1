{#
    Data-health test: over the last `recent_days` days before as_of, at least `min_share`
    of the records of each record_type resolve to a person with the primary identifier
    (rpt_identity_coverage_daily's records and resolved_records). Types with fewer than
    `min_records` records in the period are not judged. Fails with the types below.
#}
{% test identity_coverage_above(model, min_share=0.75, recent_days=7, min_records=50) %}

with

recent as (

    select
        record_type,
        sum(records) as records,
        sum(resolved_records) as resolved_records

    from {{ model }}

    where record_date >= {{ dbt.dateadd(
        'day', -1 * recent_days, 'cast(' ~ as_of_timestamp() ~ ' as date)'
    ) }}

    group by record_type

)

select
    *,
    cast(resolved_records as {{ type_double() }}) / records as coverage_share

from recent

where
    records >= {{ min_records }}
    and resolved_records < {{ min_share }} * records

{% endtest %}
