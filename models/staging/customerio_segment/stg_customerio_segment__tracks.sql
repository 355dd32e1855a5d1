with

source as (

    select * from {{ source('customerio_segment', 'tracks') }}

),

renamed as (

    select
        ---------- ids
        message_id,
        user_id as customer_id,
        {{ json_text('payload', ['properties', 'delivery_id']) }} as delivery_id,
        {{ json_text('payload', ['properties', 'campaign_id']) }} as campaign_id,
        {{ json_text('payload', ['properties', 'broadcast_id']) }} as broadcast_id,
        {{ json_text('payload', ['properties', 'newsletter_id']) }} as newsletter_id,
        {{ json_text('payload', ['properties', 'action_id']) }} as action_id,
        {{ json_text('payload', ['properties', 'journey_id']) }} as journey_id,
        {{ json_text('payload', ['properties', 'transactional_message_id']) }}
            as transactional_message_id,

        ---------- strings
        event as event_name,
        coalesce(
            {{ json_text('payload', ['properties', 'href']) }},
            {{ json_text('payload', ['properties', 'link_url']) }}
        ) as link_url,
        {{ json_text('payload', ['properties', 'failure_message']) }}
            as failure_message,
        {{ json_text('payload', ['properties', 'recipient']) }} as recipient,
        {# Customer.io sends email-only people with their email as anonymousId. #}
        lower(
            trim(
                coalesce(
                    {{ json_text('payload', ['context', 'traits', 'email']) }},
                    {{ json_text('payload', ['properties', 'recipient']) }},
                    case when anonymous_id like '%@%' then anonymous_id end
                )
            )
        ) as email,

        ---------- booleans
        {{ json_bool('payload', ['properties', 'prefetched']) }} as is_prefetched,
        {{ json_bool('payload', ['properties', 'proxied']) }} as is_proxied,
        {{ json_bool('payload', ['properties', 'machine']) }} as is_machine_click,

        ---------- timestamps
        occurred_at,
        _loaded_at as loaded_at

    from source

)

select * from renamed
