{#
    Data-health test: every source that has ever been loaded received data within
    `max_age_hours` of as_of (rpt_source_freshness's hours_since_load). A source never
    loaded (an optional one, like the App API backfill) is not checked. Fails with the
    stale sources.
#}
{% test source_is_fresh(model, max_age_hours=72) %}

select *
from {{ model }}
where hours_since_load > {{ max_age_hours }}

{% endtest %}
