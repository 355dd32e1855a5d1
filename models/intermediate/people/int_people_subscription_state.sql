{{ config(materialized='table') }}
{#
    One row per person with message events up to as_of: whether they can be messaged.
    A resubscribe after an unsubscribe clears it (customer-level and per channel of
    var('engagement_channels')); a spam complaint never expires; a hard bounce counts until
    a later delivery proves the address works.
#}

{% set never = "cast('1900-01-01' as " ~ dbt.type_timestamp() ~ ")" %}

with

message_events as (

    select
        person_id,
        channel,
        metric,
        occurred_at

    from {{ ref('int_message_events_resolved') }}

    where
        person_id is not null
        and occurred_at <= {{ as_of_timestamp() }}
        and metric in ('subscribed', 'unsubscribed', 'spammed', 'bounced', 'delivered')

),

last_events as (

    select
        person_id,
        max(
            case
                when channel = 'customer' and metric = 'subscribed' then occurred_at
            end
        ) as last_subscribed_at,
        max(
            case
                when channel = 'customer' and metric = 'unsubscribed' then occurred_at
            end
        ) as last_customer_unsubscribed_at,
        {% for channel in var('engagement_channels') %}
            max(
                case
                    when channel = '{{ channel }}' and metric = 'unsubscribed'
                        then occurred_at
                end
            ) as last_{{ channel }}_unsubscribed_at,
        {% endfor %}
        max(
            case when channel = 'email' and metric = 'spammed' then occurred_at end
        ) as last_spam_complaint_at,
        max(
            case when channel = 'email' and metric = 'bounced' then occurred_at end
        ) as last_email_bounced_at,
        max(
            case when channel = 'email' and metric = 'delivered' then occurred_at end
        ) as last_email_delivered_at

    from message_events

    group by 1

),

states as (

    select
        person_id,
        coalesce(
            last_customer_unsubscribed_at > coalesce(last_subscribed_at, {{ never }}),
            false
        ) as is_unsubscribed,
        {% for channel in var('engagement_channels') %}
            coalesce(
                last_{{ channel }}_unsubscribed_at
                > coalesce(last_subscribed_at, {{ never }}),
                false
            ) as is_{{ channel }}_unsubscribed,
        {% endfor %}
        last_spam_complaint_at is not null as has_spam_complaint,
        coalesce(
            last_email_bounced_at > coalesce(last_email_delivered_at, {{ never }}),
            false
        ) as has_hard_bounce

    from last_events

)

select * from states
