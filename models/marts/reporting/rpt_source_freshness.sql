{#
    When each source last received data, and how many hours before as_of that was: the
    sync's guardrails and the source_is_fresh test read this table, so "is the data
    fresh enough to act on" has one answer in the warehouse (dbt's own `source freshness`
    writes only a JSON file). A source never loaded has a null last_loaded_at.
#}

{% set sources = [
    ('customerio_webhooks', 'stg_customerio__webhook_events'),
    ('customerio_app_api', 'stg_customerio__api_messages'),
    ('customerio_segment', 'stg_customerio_segment__tracks'),
    ('shop_orders', 'stg_shop__orders'),
] %}

with

last_loads as (

    {% for source_name, model in sources %}
        select
            '{{ source_name }}' as source_name,
            max(loaded_at) as last_loaded_at

        from {{ ref(model) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        source_name,
        last_loaded_at,
        {{ dbt.datediff(
            'last_loaded_at', as_of_timestamp(), 'hour'
        ) }} as hours_since_load

    from last_loads

)

select * from final
