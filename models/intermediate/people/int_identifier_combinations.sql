{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        unique_key='combination_key',
        incremental_strategy='delete+insert',
    )
}}
{#
    Every (cio_id, customer_id, email) combination ever seen on a message event, with its
    latest sighting over all time, whatever as_of is. Incremental by arrival: a run groups
    only the union rows loaded since the newest it holds and keeps, per combination, the
    later of that and the sighting it held, so a tick costs what arrived instead of a
    grouping of every event (2-3.5 s at a brand's size). int_identifiers_observed applies
    as_of to it: a combination last seen by as_of needs nothing more; only the others (a
    replay of an earlier moment) go back to the events.
    A combination never loses a sighting here, so incremental equals a full refresh of
    the same raw rows. (An App API delivery fetched again replaces its raw row; a full
    refresh then forgets identifiers only the older copy carried, which this table keeps.)
    After a change to what the union reads (api_message_metrics, the Segment event-name
    seed), rebuild it with the dedupe: `--full-refresh --select int_message_events_unioned+`.
    Spark rebuilds it, as it does the other incremental models.
#}

with

new_sightings as (

    select
        cio_id,
        customer_id,
        email,
        max(occurred_at) as last_seen_at,
        max(loaded_at) as loaded_at

    from {{ ref('int_message_events_unioned') }}

    {% if is_incremental() %}
        where
            coalesce(cio_id, customer_id, email) is not null
            and loaded_at > {{ newest_loaded_at_held() }}
    {% else %}
        where coalesce(cio_id, customer_id, email) is not null
    {% endif %}

    group by 1, 2, 3

),

keyed as (

    select
        {{ generate_surrogate_key(['cio_id', 'customer_id', 'email']) }}
            as combination_key,
        new_sightings.*

    from new_sightings

),

{% if is_incremental() %}
    merged as (

        select
            keyed.combination_key,
            keyed.cio_id,
            keyed.customer_id,
            keyed.email,
            {# A late event (old occurred_at) must not move a sighting back. #}
            case
                when
                    held.last_seen_at is not null
                    and (keyed.last_seen_at is null or held.last_seen_at > keyed.last_seen_at)
                    then held.last_seen_at
                else keyed.last_seen_at
            end as last_seen_at,
            keyed.loaded_at

        from keyed

        left join {{ this }} as held
            on keyed.combination_key = held.combination_key

    )

{% else %}
    merged as (

        select * from keyed

    )

{% endif %}

select * from merged
