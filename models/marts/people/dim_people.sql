{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='changed_rows',
        unique_key='person_id',
        on_schema_change='sync_all_columns',
    )
}}
{#
    One row per person as of as_of: identifiers (email, phone), the id Segment receives, subscription state
    and last human engagement per channel, last order. Each part is its own intermediate
    model; this mart only joins them.
#}

with

people as (

    select distinct person_id

    from {{ ref('int_identifiers_resolved') }}

    where person_id is not null

),

identifiers as (

    select * from {{ ref('int_people_identifiers') }}

),

phones as (

    select * from {{ ref('int_people_phone') }}

),

subscription_state as (

    select * from {{ ref('int_people_subscription_state') }}

),

engagement as (

    select * from {{ ref('int_people_engagement') }}

),

purchases as (

    select * from {{ ref('int_people_purchases') }}

),

people_joined as (

    select
        ---------- ids
        people.person_id,
        identifiers.customer_id,
        identifiers.cio_id,
        {% if var('primary_identifier') == 'email' %}
            identifiers.email
        {% elif var('primary_identifier') == 'cio_id' %}
            identifiers.cio_id
        {% else %}
            identifiers.customer_id
        {% endif %} as user_id,

        ---------- strings
        identifiers.email,
        phones.phone,

        ---------- numerics
        coalesce(purchases.count_orders, 0) as count_orders,
        coalesce(identifiers.count_customer_ids, 0) as count_customer_ids,

        ---------- booleans
        coalesce(subscription_state.is_unsubscribed, false) as is_unsubscribed,
        {% for channel in var('engagement_channels') %}
            coalesce(subscription_state.is_{{ channel }}_unsubscribed, false)
                as is_{{ channel }}_unsubscribed,
        {% endfor %}
        coalesce(subscription_state.has_spam_complaint, false) as has_spam_complaint,
        coalesce(subscription_state.has_hard_bounce, false) as has_hard_bounce,

        ---------- timestamps
        {% for channel in var('engagement_channels') %}
            engagement.last_human_{{ channel }}_engagement_at,
        {% endfor %}
        engagement.first_message_event_at,
        purchases.last_order_at,
        purchases.last_purchase_at

    from people

    left join identifiers
        on people.person_id = identifiers.person_id

    left join phones
        on people.person_id = phones.person_id

    left join subscription_state
        on people.person_id = subscription_state.person_id

    left join engagement
        on people.person_id = engagement.person_id

    left join purchases
        on people.person_id = purchases.person_id

)

select * from people_joined
