{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='changed_rows',
        unique_key='person_id',
        on_schema_change='sync_all_columns',
    )
}}
{#
    One row per person as of as_of with the most recently seen identifier of each type
    (ids and emails change; the latest sighting wins, ties to the larger value) and how many
    customer_ids they have had.
#}

with

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}

    where person_id is not null

),

observed as (

    select * from {{ ref('int_identifiers_observed') }}

),

{# Each identifier value's last sighting. #}
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

)

select * from latest_identifiers
