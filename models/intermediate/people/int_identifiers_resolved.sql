{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        unique_key=['identifier_type', 'identifier_value'],
        incremental_strategy='delete+insert',
    )
}}
{#
    One row per identifier value (of type cio_id, customer_id or email) with the person it
    belongs to. cio_id is Customer.io's immutable person id, so it anchors people whose
    customer_id changed; an id or email seen beside a cio_id resolves to the cio_id it was
    seen with most recently; email-only records join a person through the lower-cased email.
    A cio_id whose customer_id has since been seen with another cio_id (the account merged
    or re-created in Customer.io) joins that cio_id's person, followed along a chain of such
    merges to its end: otherwise what happened under the old one (a spam complaint, an
    unsubscribe, a click) would stay with a person left without identifiers, and the
    customer would be retargeted as if it never had.
    A customer_id never seen beside a cio_id (a store account Customer.io does not know
    yet, such as an email-only lead who bought with a new account) joins the person of the
    email it was seen with most recently, when a cio_id carries that email: otherwise its
    orders would belong to a person of their own, and the lead who clicked would stay "clicked, has not bought".

    Resolved in full each run (from the compact int_identifiers_observed), but stored
    incrementally: a run writes only the identifiers whose person changed, stamped with
    changed_at, so int_message_events_deduplicated re-resolves just their events. An identifier
    not yet seen as of as_of (a replay of an earlier moment) keeps its row with a null
    person_id.
#}

with

observed as (

    select * from {{ ref('int_identifiers_observed') }}

),

id_latest_cio as (

    select
        customer_id,
        cio_id,
        row_number() over (
            partition by customer_id order by observed_at desc, cio_id desc
        ) as recency_rank

    from observed

    where customer_id is not null and cio_id is not null

),

email_latest_cio as (

    select
        email,
        cio_id,
        row_number() over (
            partition by email order by observed_at desc, cio_id desc
        ) as recency_rank

    from observed

    where email is not null and cio_id is not null

),

cio_latest_id as (

    select
        cio_id,
        customer_id,
        row_number() over (
            partition by cio_id order by observed_at desc, customer_id desc
        ) as recency_rank

    from observed

    where cio_id is not null and customer_id is not null

),

id_latest_email as (

    select
        customer_id,
        email,
        row_number() over (
            partition by customer_id order by observed_at desc, email desc
        ) as recency_rank

    from observed

    where customer_id is not null and email is not null

),

email_latest_id as (

    select
        email,
        customer_id,
        row_number() over (
            partition by email order by observed_at desc, customer_id desc
        ) as recency_rank

    from observed

    where email is not null and customer_id is not null

),

{#- Each identifier once: the person of each is decided from the recency ranks above. #}

cio_values as (

    select distinct cio_id

    from observed

    where cio_id is not null

),

customer_id_values as (

    select distinct customer_id

    from observed

    where customer_id is not null

),

email_values as (

    select distinct email

    from observed

    where email is not null

),

cio_next as (

    {#- The cio_id its latest customer_id was seen with last: itself, unless merged. #}
    select
        cio_values.cio_id,
        coalesce(id_latest_cio.cio_id, cio_values.cio_id) as next_cio_id

    from cio_values

    left join cio_latest_id
        on
            cio_values.cio_id = cio_latest_id.cio_id
            and cio_latest_id.recency_rank = 1

    left join id_latest_cio
        on
            cio_latest_id.customer_id = id_latest_cio.customer_id
            and id_latest_cio.recency_rank = 1

),

{#
    Followed to its end: a chain of merges can change customer_id on the way (c1 with
    cus_1, c2 takes cus_1 over and is later seen with cus_2, c3 takes cus_2 over), and one
    hop would leave c1 (and its email) a person of its own, cio:c2, that c2 is not in. Each
    step doubles the hops followed (2 ** cio_hop_steps, 32). A chain ends: each hop goes to
    a later sighting (or, on a tie, a larger cio_id), and the end is a cio_id that is its
    own next, so a longer chain only stops short, without a cycle. Only the cio_ids that
    move are followed (a few among every cio_id): the rest are their own end.
#}
{% set cio_hop_steps = 5 %}
cio_hops_0 as (

    select
        cio_id,
        next_cio_id

    from cio_next

    where next_cio_id != cio_id

),

{% for step in range(1, cio_hop_steps + 1) %}
    cio_hops_{{ step }} as (

        select
            cio_hops_{{ step - 1 }}.cio_id,
            coalesce(hop_end.next_cio_id, cio_hops_{{ step - 1 }}.next_cio_id)
                as next_cio_id

        from cio_hops_{{ step - 1 }}

        left join cio_hops_{{ step - 1 }} as hop_end
            on cio_hops_{{ step - 1 }}.next_cio_id = hop_end.cio_id

    ),

{% endfor %}
cio_ids as (

    select
        'cio_id' as identifier_type,
        cio_values.cio_id as identifier_value,
        {{ dbt.concat([
            "'cio:'", "coalesce(cio_hops_" ~ cio_hop_steps ~ ".next_cio_id, cio_values.cio_id)"
        ]) }} as person_id

    from cio_values

    left join cio_hops_{{ cio_hop_steps }}
        on cio_values.cio_id = cio_hops_{{ cio_hop_steps }}.cio_id

),

customer_ids as (

    select
        'customer_id' as identifier_type,
        customer_id_values.customer_id as identifier_value,
        {#- A cio_id's person is cio_ids' to say (one owner), here and for emails. #}
        coalesce(
            by_id_cio.person_id,
            by_email_cio.person_id,
            {{ dbt.concat(["'id:'", "customer_id_values.customer_id"]) }}
        ) as person_id

    from customer_id_values

    left join id_latest_cio
        on
            customer_id_values.customer_id = id_latest_cio.customer_id
            and id_latest_cio.recency_rank = 1

    left join cio_ids as by_id_cio
        on id_latest_cio.cio_id = by_id_cio.identifier_value

    left join id_latest_email
        on
            customer_id_values.customer_id = id_latest_email.customer_id
            and id_latest_email.recency_rank = 1

    left join email_latest_cio
        on
            id_latest_email.email = email_latest_cio.email
            and email_latest_cio.recency_rank = 1

    left join cio_ids as by_email_cio
        on email_latest_cio.cio_id = by_email_cio.identifier_value

),

emails as (

    select
        'email' as identifier_type,
        email_values.email as identifier_value,
        {#- Else the person of the id it was seen with last (customer_ids decides it). #}
        coalesce(
            cio_ids.person_id,
            customer_ids.person_id,
            {{ dbt.concat(["'email:'", "email_values.email"]) }}
        ) as person_id

    from email_values

    left join email_latest_cio
        on
            email_values.email = email_latest_cio.email
            and email_latest_cio.recency_rank = 1

    left join cio_ids
        on email_latest_cio.cio_id = cio_ids.identifier_value

    left join email_latest_id
        on
            email_values.email = email_latest_id.email
            and email_latest_id.recency_rank = 1

    left join customer_ids
        on email_latest_id.customer_id = customer_ids.identifier_value

),

unioned as (

    select * from cio_ids

    union all

    select * from customer_ids

    union all

    select * from emails

),

{% if is_incremental() %}
    previously_resolved as (

        select
            identifier_type,
            identifier_value,
            person_id

        from {{ this }}

    ),

    changed as (

        select
            coalesce(unioned.identifier_type, previously_resolved.identifier_type)
                as identifier_type,
            coalesce(unioned.identifier_value, previously_resolved.identifier_value)
                as identifier_value,
            unioned.person_id

        from unioned

        full outer join previously_resolved
            on
                unioned.identifier_type = previously_resolved.identifier_type
                and unioned.identifier_value = previously_resolved.identifier_value

        where unioned.person_id is distinct from previously_resolved.person_id

    ),

{% else %}
    changed as (

        select * from unioned

    ),

{% endif %}
stamped as (

    select
        identifier_type,
        identifier_value,
        person_id,
        {{ run_started_timestamp() }} as changed_at

    from changed

)

select * from stamped
