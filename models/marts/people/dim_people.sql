{#
    One row per person as of as_of: identifiers, the id Segment receives, subscription state
    and last human engagement per channel, last order.
#}

with

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}

),

observed as (

    select * from {{ ref('int_identifiers_observed') }}

),

message_events as (

    select * from {{ ref('int_message_events_resolved') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

    where ordered_at <= {{ as_of_timestamp() }}

),

people as (

    select distinct person_id

    from identifiers

),

{# Each identifier value's last sighting, so the most recent one wins (ids change). #}
observed_last_seen as (

    select
        'cio_id' as identifier_type,
        cio_id as identifier_value,
        max(observed_at) as last_seen_at

    from observed

    where cio_id is not null

    group by 1, 2

    union all

    select
        'customer_id' as identifier_type,
        customer_id as identifier_value,
        max(observed_at) as last_seen_at

    from observed

    where customer_id is not null

    group by 1, 2

    union all

    select
        'email' as identifier_type,
        email as identifier_value,
        max(observed_at) as last_seen_at

    from observed

    where email is not null

    group by 1, 2

),

identifier_recency as (

    select
        identifiers.person_id,
        identifiers.identifier_type,
        identifiers.identifier_value,
        row_number() over (
            partition by identifiers.person_id, identifiers.identifier_type
            order by
                observed_last_seen.last_seen_at desc,
                identifiers.identifier_value desc
        ) as recency_rank

    from identifiers

    inner join observed_last_seen
        on
            identifiers.identifier_type = observed_last_seen.identifier_type
            and identifiers.identifier_value = observed_last_seen.identifier_value

),

latest_identifiers as (

    select
        person_id,
        max(
            case
                when identifier_type = 'customer_id' and recency_rank = 1
                    then identifier_value
            end
        ) as customer_id,
        max(
            case
                when identifier_type = 'cio_id' and recency_rank = 1
                    then identifier_value
            end
        ) as cio_id,
        max(
            case
                when identifier_type = 'email' and recency_rank = 1
                    then identifier_value
            end
        ) as email,
        count(case when identifier_type = 'customer_id' then 1 end)
            as count_customer_ids

    from identifier_recency

    group by 1

),

subscription_events as (

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
        max(
            case when channel = 'email' and metric = 'unsubscribed' then occurred_at end
        ) as last_email_unsubscribed_at,
        max(
            case when channel = 'sms' and metric = 'unsubscribed' then occurred_at end
        ) as last_sms_unsubscribed_at,
        max(
            case when channel = 'email' and metric = 'spammed' then occurred_at end
        ) as last_spam_complaint_at,
        max(
            case when channel = 'email' and metric = 'bounced' then occurred_at end
        ) as last_email_bounced_at,
        max(
            case when channel = 'email' and metric = 'delivered' then occurred_at end
        ) as last_email_delivered_at,
        {% for channel in var('engagement_channels') %}
            max(
                case
                    when
                        channel = '{{ channel }}'
                        and metric in ('opened', 'clicked')
                        and coalesce(is_machine, false) = false
                        then occurred_at
                end
            ) as last_human_{{ channel }}_engagement_at,
        {% endfor %}
        min(occurred_at) as first_message_event_at

    from message_events

    where person_id is not null

    group by 1

),

order_summary as (

    select
        person_id,
        count(*) as count_orders,
        max(ordered_at) as last_order_at,
        max(case when not is_cancelled then ordered_at end) as last_purchase_at

    from orders

    where person_id is not null

    group by 1

),

people_joined as (

    select
        ---------- ids
        people.person_id,
        latest_identifiers.customer_id,
        latest_identifiers.cio_id,
        {% if var('primary_identifier') == 'email' %}
            latest_identifiers.email
        {% elif var('primary_identifier') == 'cio_id' %}
            latest_identifiers.cio_id
        {% else %}
            latest_identifiers.customer_id
        {% endif %} as user_id,

        ---------- strings
        latest_identifiers.email,

        ---------- numerics
        coalesce(order_summary.count_orders, 0) as count_orders,
        coalesce(latest_identifiers.count_customer_ids, 0) as count_customer_ids,

        ---------- booleans
        {# A resubscribe after an unsubscribe clears it; complaints never expire. #}
        coalesce(
            subscription_events.last_customer_unsubscribed_at
            > coalesce(
                subscription_events.last_subscribed_at,
                cast('1900-01-01' as {{ dbt.type_timestamp() }})
            ),
            false
        ) as is_unsubscribed,
        coalesce(
            subscription_events.last_email_unsubscribed_at
            > coalesce(
                subscription_events.last_subscribed_at,
                cast('1900-01-01' as {{ dbt.type_timestamp() }})
            ),
            false
        ) as is_email_unsubscribed,
        coalesce(
            subscription_events.last_sms_unsubscribed_at
            > coalesce(
                subscription_events.last_subscribed_at,
                cast('1900-01-01' as {{ dbt.type_timestamp() }})
            ),
            false
        ) as is_sms_unsubscribed,
        subscription_events.last_spam_complaint_at is not null as has_spam_complaint,
        {# A hard bounce counts until a later delivery proves the address works. #}
        coalesce(
            subscription_events.last_email_bounced_at
            > coalesce(
                subscription_events.last_email_delivered_at,
                cast('1900-01-01' as {{ dbt.type_timestamp() }})
            ),
            false
        ) as has_hard_bounce,

        ---------- timestamps
        {% for channel in var('engagement_channels') %}
            subscription_events.last_human_{{ channel }}_engagement_at,
        {% endfor %}
        subscription_events.first_message_event_at,
        order_summary.last_order_at,
        order_summary.last_purchase_at

    from people

    left join latest_identifiers
        on people.person_id = latest_identifiers.person_id

    left join subscription_events
        on people.person_id = subscription_events.person_id

    left join order_summary
        on people.person_id = order_summary.person_id

)

select * from people_joined
