{#
    Generic test: every row satisfies a boolean SQL expression (our stand-in for
    dbt_utils'). Fails with the rows where it is false or null.
#}
{% test expression_is_true(model, expression) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}
