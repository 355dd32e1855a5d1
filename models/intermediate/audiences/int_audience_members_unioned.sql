{#
    Members of every audience version, both arms, as of as_of. The union itself is generated
    from dbt's graph (macros/registry/audience_registry.sql); dbt only learns the build order
    from refs it sees while parsing, so every audience version is listed below. A pytest
    (tests/dbt/test_project_structure.py) fails naming any audience missing from this list.

    A table on PostgreSQL, ephemeral elsewhere. Each branch of the union names its
    audience as a constant, and PostgreSQL estimates the branches' join to dim_audiences
    on those constants at a couple of rows; it then joins the ledger to them by nested
    loop, comparing every member with every ledger row (7 s for 10 k members at 20 k
    people, minutes at a brand's size). Written as a table and analyzed
    (macros/sql/analyze_after_write.sql), the members are planned from their real counts.
    DuckDB and Spark plan the union well as it is.
#}
{{ config(materialized=('table' if target.type == 'postgres' else 'ephemeral')) }}
-- depends_on: {{ ref('cart_recovery_clicked_no_purchase', v=1) }}
-- depends_on: {{ ref('cart_recovery_clicked_no_purchase', v=2) }}
-- depends_on: {{ ref('replenishment_clicked_no_purchase', v=1) }}
-- depends_on: {{ ref('unengaged_45_days', v=1) }}
-- depends_on: {{ ref('recent_purchasers', v=1) }}
-- depends_on: {{ ref('fatigued', v=1) }}
-- depends_on: {{ ref('email_clickers', v=1) }}
-- depends_on: {{ ref('sms_clickers', v=1) }}

with

{% set registry = audience_registry() %}
{% for audience in registry %}
{{ audience.audience_key }}_v{{ audience.audience_version }}_members as (

    select
        '{{ audience.audience_key }}' as audience_key,
        {{ audience.audience_version }} as audience_version,
        person_id,
        signal_at,
        {{ holdout_arm('person_id', audience.audience_key, audience.holdout_share) }}
            as arm

    from {{ audience.relation_name }}

),

{% endfor %}
unioned as (

    {% for audience in registry %}
        select * from {{ audience.audience_key }}_v{{ audience.audience_version }}_members
        {% if not loop.last %}union all{% endif %}
    {% else %}
        select
            cast(null as {{ dbt.type_string() }}) as audience_key,
            cast(null as {{ dbt.type_int() }}) as audience_version,
            cast(null as {{ dbt.type_string() }}) as person_id,
            cast(null as {{ dbt.type_timestamp() }}) as signal_at,
            cast(null as {{ dbt.type_string() }}) as arm
        where false
    {% endfor %}

)

select * from unioned
