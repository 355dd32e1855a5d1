with

source as (

    select * from {{ source('customerio', 'api_messages') }}

),

renamed as (

    select
        ---------- ids
        delivery_id,
        {{ json_text('payload', ['campaign_id']) }} as campaign_id,
        {{ json_text('payload', ['broadcast_id']) }} as broadcast_id,
        {{ json_text('payload', ['newsletter_id']) }} as newsletter_id,
        {{ json_text('payload', ['action_id']) }} as action_id,
        {{ json_text('payload', ['customer_identifiers', 'id']) }} as customer_id,
        {{ json_text('payload', ['customer_identifiers', 'cio_id']) }} as cio_id,

        ---------- strings
        {# The App API calls SMS "twilio"; webhooks call it sms. #}
        case message_type
            when 'twilio' then 'sms'
            else message_type
        end as channel,
        lower(trim({{ json_text('payload', ['customer_identifiers', 'email']) }}))
            as email,

        ---------- numerics: the first time each metric was reached (Unix seconds)
        {% for metric in var('api_message_metrics') -%}
            {%- set reached = json_text('payload', ['metrics', metric]) -%}
            cast({{ reached }} as {{ dbt.type_bigint() }}) as {{ metric }}_epoch,
        {% endfor %}

        ---------- timestamps
        created_at,
        _loaded_at as loaded_at

    from source

)

select * from renamed
