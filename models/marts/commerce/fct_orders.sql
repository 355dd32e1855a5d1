with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}

),

by_customer_id as (

    select
        identifier_value,
        person_id

    from identifiers

    where identifier_type = 'customer_id'

),

by_email as (

    select
        identifier_value,
        person_id

    from identifiers

    where identifier_type = 'email'

),

orders_joined_to_people as (

    select
        ---------- ids
        orders.order_id,
        orders.customer_id,

        ---------- strings
        orders.email,
        orders.order_status,
        orders.currency,

        ---------- numerics
        orders.total_cents,

        ---------- booleans
        orders.is_cancelled,
        orders.is_refunded,

        ---------- timestamps
        orders.ordered_at,
        orders.updated_at,

        ---------- computed ids
        coalesce(by_customer_id.person_id, by_email.person_id) as person_id

    from orders

    left join by_customer_id
        on orders.customer_id = by_customer_id.identifier_value

    left join by_email
        on orders.email = by_email.identifier_value

)

select * from orders_joined_to_people
