{#
    One row per order (latest version) with the person who placed it as of as_of: by
    customer_id, else by lower-cased email. Orders are few next to message events, so this
    stays ephemeral over the materialized identity map; fct_orders stores it.
#}

with

orders as (

    select * from {{ ref('stg_shop__orders') }}

),

orders_joined_to_people as (

    {{ person_by_identifiers(
        'orders', ['customer_id', 'email'], ref('int_identifiers_resolved')
    ) }}

)

select * from orders_joined_to_people
