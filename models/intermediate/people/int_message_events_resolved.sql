{#
    Message events up to as_of with the person each belongs to: by cio_id first, then
    customer_id, then lower-cased email.
#}

with

message_events as (

    select * from {{ ref('fct_message_events') }}

    where occurred_at <= {{ as_of_timestamp() }}

),

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}

),

by_cio_id as (

    select
        identifier_value,
        person_id

    from identifiers

    where identifier_type = 'cio_id'

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

resolved as (

    select
        message_events.*,
        coalesce(
            by_cio_id.person_id, by_customer_id.person_id, by_email.person_id
        ) as person_id

    from message_events

    left join by_cio_id
        on message_events.cio_id = by_cio_id.identifier_value

    left join by_customer_id
        on message_events.customer_id = by_customer_id.identifier_value

    left join by_email
        on message_events.email = by_email.identifier_value

)

select * from resolved
