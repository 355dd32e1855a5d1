{#
    The values taken from the payload were copied into columns of their own when each
    event landed (PAYLOAD_FIELDS in scripts/loaders/webhooks.py): parsed once, there,
    instead of on every build.
#}
with

source as (

    select * from {{ source('customerio', 'webhook_events') }}

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

    from source

)

select * from renamed
