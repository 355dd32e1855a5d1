with

source as (

    select * from {{ source('customerio', 'webhook_events') }}

),

renamed as (

    select
        ---------- ids
        event_id,
        {{ json_text('payload', ['data', 'delivery_id']) }} as delivery_id,
        {{ json_text('payload', ['data', 'campaign_id']) }} as campaign_id,
        {{ json_text('payload', ['data', 'broadcast_id']) }} as broadcast_id,
        {{ json_text('payload', ['data', 'newsletter_id']) }} as newsletter_id,
        {{ json_text('payload', ['data', 'action_id']) }} as action_id,
        {{ json_text('payload', ['data', 'journey_id']) }} as journey_id,
        {{ json_text('payload', ['data', 'transactional_message_id']) }}
            as transactional_message_id,
        {{ json_text('payload', ['data', 'identifiers', 'id']) }} as customer_id,
        {{ json_text('payload', ['data', 'identifiers', 'cio_id']) }} as cio_id,

        ---------- strings
        object_type,
        metric,
        {{ json_text('payload', ['data', 'href']) }} as link_url,
        {{ json_text('payload', ['data', 'failure_message']) }} as failure_message,
        {# Whom the message went to: an email, a phone (SMS: the MSISDN) or a person id. #}
        {{ json_text('payload', ['data', 'recipient']) }} as recipient,
        lower(
            trim(
                coalesce(
                    {{ json_text('payload', ['data', 'identifiers', 'email']) }},
                    {{ json_text('payload', ['data', 'email_address']) }}
                )
            )
        ) as email,

        ---------- booleans
        {{ json_bool('payload', ['data', 'prefetched']) }} as is_prefetched,
        {{ json_bool('payload', ['data', 'proxied']) }} as is_proxied,
        {{ json_bool('payload', ['data', 'machine']) }} as is_machine_click,

        ---------- timestamps
        occurred_at,
        _loaded_at as loaded_at

    from source

)

select * from renamed
