{#
    One row per order (latest version) with the person who placed it as of as_of: by
    customer_id, else by lower-cased email. Orders are few next to message events, so this
    stays ephemeral over the materialized identity map; fct_orders stores it.
#}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}

    where person_id is not null

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
        orders.*,
        coalesce(by_customer_id.person_id, by_email.person_id) as person_id

    from orders

    left join by_customer_id
        on orders.customer_id = by_customer_id.identifier_value

    left join by_email
        on orders.email = by_email.identifier_value

)

select * from orders_joined_to_people
