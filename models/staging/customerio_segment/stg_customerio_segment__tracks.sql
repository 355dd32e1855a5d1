with

source as (

    select * from {{ source('customerio_segment', 'tracks') }}

),

{# The payload's values, copied into columns when each row landed (see the macro). #}
extracted as (

    select
        message_id,
        user_id,
        anonymous_id,
        event,
        occurred_at,
        _loaded_at,
        {{ payload_columns('raw_customerio_segment.tracks') }}

    from source

),

renamed as (

    select
        ---------- ids
        message_id,
        user_id as customer_id,
        delivery_id,
        campaign_id,
        broadcast_id,
        newsletter_id,
        action_id,
        journey_id,
        transactional_message_id,

        ---------- strings
        event as event_name,
        coalesce(href, link_url) as link_url,
        failure_message,
        recipient,
        {#
            Customer.io sends email-only people with their email as anonymousId. The
            recipient is an email only on email messages: on SMS it is the phone number,
            elsewhere it can be a person id, and taken as an email it would join everyone
            messaged at that number into one person (and reach Segment as their email).
        #}
        lower(
            trim(
                coalesce(
                    traits_email,
                    case when recipient like '%@%' then recipient end,
                    case when anonymous_id like '%@%' then anonymous_id end
                )
            )
        ) as email,

        ---------- booleans
        {{ text_bool('prefetched') }} as is_prefetched,
        {{ text_bool('proxied') }} as is_proxied,
        {{ text_bool('machine') }} as is_machine_click,

        ---------- timestamps
        occurred_at,
        _loaded_at as loaded_at

    from extracted

)

select * from renamed
