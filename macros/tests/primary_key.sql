{#
    Generic test: the column is a primary key, never null and never repeated. dbt's
    `unique` and `not_null` check the same in two nodes; every node costs a build about
    60 ms of dbt's own work whatever the table's size, and every `dbt build` (each scheduled
    tick included) runs all of them. Fails with one row per repeated value, and one row
    (key_value null) counting the rows without a key.
#}
{% test primary_key(model, column_name) %}

select
    {{ column_name }} as key_value,
    count(*) as rows_with_key

from {{ model }}

group by {{ column_name }}

having count(*) > 1 or {{ column_name }} is null

{% endtest %}
