{{ config(materialized='table') }}
{#
    One row per person with message events up to as_of: whether they can be messaged.
    A resubscribe after an unsubscribe clears it (customer-level and per channel of
    var('engagement_channels')); a spam complaint never expires; a hard bounce counts until
    a later delivery proves the address works.
#}

{% set never = "cast('1900-01-01' as " ~ dbt.type_timestamp() ~ ")" %}

{#- The summary's columns, as the call below defines them. -#}
{%- set channels = var('engagement_channels') -%}
{%- set columns = (
    'last_subscribed_at last_customer_unsubscribed_at '
    ~ ('last_' ~ channels | join('_unsubscribed_at last_') ~ '_unsubscribed_at')
    ~ ' last_spam_complaint_at last_email_bounced_at last_email_delivered_at'
).split() -%}

{%- set aggregates -%}
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
    {%- for channel in var('engagement_channels') %}
    max(
        case
            when channel = '{{ channel }}' and metric = 'unsubscribed'
                then occurred_at
        end
    ) as last_{{ channel }}_unsubscribed_at,
    {%- endfor %}
    max(
        case when channel = 'email' and metric = 'spammed' then occurred_at end
    ) as last_spam_complaint_at,
    max(
        case when channel = 'email' and metric = 'bounced' then occurred_at end
    ) as last_email_bounced_at,
    max(
        case when channel = 'email' and metric = 'delivered' then occurred_at end
    ) as last_email_delivered_at
{%- endset %}

with

{# Rebuilt only for the people whose events changed (macros/people/summarised_per_person.sql). #}
last_events as (

    {{ summarised_per_person(
        ref('int_message_events_resolved'),
        columns,
        events_filter="metric in ('subscribed', 'unsubscribed', 'spammed', 'bounced', 'delivered')",
        aggregates=aggregates,
    ) }}

),

{# The summary stays in the table: the next run keeps it for unchanged people. #}
states as (

    select
        last_events.*,
        coalesce(
            last_events.last_customer_unsubscribed_at
            > coalesce(last_events.last_subscribed_at, {{ never }}),
            false
        ) as is_unsubscribed,
        {% for channel in var('engagement_channels') %}
            coalesce(
                last_events.last_{{ channel }}_unsubscribed_at
                > coalesce(last_events.last_subscribed_at, {{ never }}),
                false
            ) as is_{{ channel }}_unsubscribed,
        {% endfor %}
        last_events.last_spam_complaint_at is not null as has_spam_complaint,
        coalesce(
            last_events.last_email_bounced_at
            > coalesce(last_events.last_email_delivered_at, {{ never }}),
            false
        ) as has_hard_bounce

    from last_events

)

select * from states
