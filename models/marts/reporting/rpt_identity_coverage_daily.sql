{#
    Per day, of the message events and of the non-cancelled orders, how many resolve to a
    person who has the primary identifier (a user_id Segment can receive, see var
    primary_identifier). A drop means a form or integration stopped sending the id and
    those people silently fall out of every audience. Events and orders are matched
    through the person the identity resolution gave them, as the audiences match them:
    an event carrying an older email of a person with a user_id counts as resolved.
#}

with

window_bounds as (

    select
        {{ dbt.dateadd(
            'day', -1 * var('reporting_history_days'),
            'cast(cast(' ~ as_of_timestamp() ~ ' as date) as '
            ~ dbt.type_timestamp() ~ ')'
        ) }} as starts_at,
        {{ as_of_timestamp() }} as ends_at

),

people_with_user_id as (

    select person_id

    from {{ ref('dim_people') }}

    where user_id is not null

),

message_events as (

    select
        person_id,
        occurred_at

    from {{ ref('int_message_events_resolved') }}

),

orders as (

    select
        person_id,
        ordered_at

    from {{ ref('fct_orders') }}

    where not is_cancelled

),

events_resolved as (

    select
        cast(message_events.occurred_at as date) as record_date,
        people_with_user_id.person_id is not null as is_resolved

    from message_events

    cross join window_bounds

    left join people_with_user_id
        on message_events.person_id = people_with_user_id.person_id

    where
        message_events.occurred_at >= window_bounds.starts_at
        and message_events.occurred_at < window_bounds.ends_at

),

orders_resolved as (

    select
        cast(orders.ordered_at as date) as record_date,
        people_with_user_id.person_id is not null as is_resolved

    from orders

    cross join window_bounds

    left join people_with_user_id
        on orders.person_id = people_with_user_id.person_id

    where
        orders.ordered_at >= window_bounds.starts_at
        and orders.ordered_at < window_bounds.ends_at

),

records as (

    select
        record_date,
        is_resolved,
        'message_event' as record_type

    from events_resolved

    union all

    select
        record_date,
        is_resolved,
        'order' as record_type

    from orders_resolved

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

    group by 1, 2

)

select * from final
