with

source as (

    select * from {{ source('customerio', 'webhook_events') }}

),

{# The payload's values, copied into columns when each row landed (see the macro). #}
extracted as (

    select
        event_id,
        object_type,
        metric,
        occurred_at,
        _loaded_at,
        {{ payload_columns('raw_customerio.webhook_events') }}

    from source

),

renamed as (

    select
        ---------- ids
        event_id,
        delivery_id,
        campaign_id,
        broadcast_id,
        newsletter_id,
        action_id,
        journey_id,
        transactional_message_id,
        identifiers_id as customer_id,
        identifiers_cio_id as cio_id,

        ---------- strings
        object_type,
        metric,
        href as link_url,
        failure_message,
        {# Whom the message went to: an email, a phone (SMS: the MSISDN) or a person id. #}
        recipient,
        lower(trim(coalesce(identifiers_email, email_address))) as email,

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
