{{ config(materialized='view') }}
{#
    The engagement mart: every distinct message event, as int_message_events_deduplicated
    holds it. A view, so the events are stored (and tested) once, in the incremental model.
#}

with

message_events as (

    select * from {{ ref('int_message_events_deduplicated') }}

)

select * from message_events
