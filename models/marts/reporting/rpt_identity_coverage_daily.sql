{#
    Per day, of the message events and of the non-cancelled orders, how many resolve to a
    person who has the primary identifier (a user_id Segment can receive, see var
    primary_identifier). A drop means a form or integration stopped sending the id and
    those people silently fall out of every audience. Orders carry their person; events
    are matched to people on any identifier they carry (customer_id, email, cio_id).
#}

with

{# One row per identifier value (distinct), so the joins below never fan out. #}
{% for identifier in ['customer_id', 'email', 'cio_id'] %}
    resolved_{{ identifier }}s as (

        select distinct {{ 'lower(email)' if identifier == 'email' else identifier }}
            as identifier_value

        from {{ ref('dim_people') }}

        where user_id is not null and {{ identifier }} is not null

    ),

{% endfor %}
window_start as (

    select {{ dbt.dateadd(
        'day', -1 * var('reporting_history_days'),
        'cast(cast(' ~ as_of_timestamp() ~ ' as date) as ' ~ dbt.type_timestamp() ~ ')'
    ) }} as starts_at

),

events as (

    select
        cast(events.occurred_at as date) as record_date,
        coalesce(
            by_customer_id.identifier_value,
            by_email.identifier_value,
            by_cio_id.identifier_value
        ) is not null as is_resolved

    from {{ ref('fct_message_events') }} as events

    cross join window_start

    left join resolved_customer_ids as by_customer_id
        on events.customer_id = by_customer_id.identifier_value

    left join resolved_emails as by_email
        on lower(events.email) = by_email.identifier_value

    left join resolved_cio_ids as by_cio_id
        on events.cio_id = by_cio_id.identifier_value

    where
        events.occurred_at >= window_start.starts_at
        and events.occurred_at < {{ as_of_timestamp() }}

),

orders as (

    select
        cast(orders.ordered_at as date) as record_date,
        people.person_id is not null as is_resolved

    from {{ ref('fct_orders') }} as orders

    cross join window_start

    left join {{ ref('dim_people') }} as people
        on orders.person_id = people.person_id and people.user_id is not null

    where
        not orders.is_cancelled
        and orders.ordered_at >= window_start.starts_at
        and orders.ordered_at < {{ as_of_timestamp() }}

),

records as (

    select
        'message_event' as record_type,
        record_date,
        is_resolved

    from events

    union all

    select
        'order' as record_type,
        record_date,
        is_resolved

    from orders

),

final as (

    select
        record_date,
        record_type,
        count(*) as records,
        sum(case when is_resolved then 1 else 0 end) as resolved_records,
        cast(sum(case when is_resolved then 1 else 0 end) as {{ type_double() }})
        / count(*) as coverage_share

    from records

    group by record_date, record_type

)

select * from final
