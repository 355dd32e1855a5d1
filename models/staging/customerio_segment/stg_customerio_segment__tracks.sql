with

source as (

    select * from {{ source('customerio_segment', 'tracks') }}

),

{# Every value this model takes from the payload, in one parse per row (see the macro). #}
extracted as (

    select
        message_id,
        user_id,
        anonymous_id,
        event,
        occurred_at,
        _loaded_at,
        {{ json_text_columns('payload', {
            'delivery_id': ['properties', 'delivery_id'],
            'campaign_id': ['properties', 'campaign_id'],
            'broadcast_id': ['properties', 'broadcast_id'],
            'newsletter_id': ['properties', 'newsletter_id'],
            'action_id': ['properties', 'action_id'],
            'journey_id': ['properties', 'journey_id'],
            'transactional_message_id': ['properties', 'transactional_message_id'],
            'href': ['properties', 'href'],
            'link_url': ['properties', 'link_url'],
            'failure_message': ['properties', 'failure_message'],
            'recipient': ['properties', 'recipient'],
            'traits_email': ['context', 'traits', 'email'],
            'prefetched': ['properties', 'prefetched'],
            'proxied': ['properties', 'proxied'],
            'machine': ['properties', 'machine'],
        }) }}

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
        {# Customer.io sends email-only people with their email as anonymousId. #}
        lower(
            trim(
                coalesce(
                    traits_email,
                    recipient,
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
