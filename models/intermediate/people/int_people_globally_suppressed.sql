{{ config(materialized='table') }}
{# People matched by any identifier on the global suppression list seed. #}

with

suppression_list as (

    select
        identifier_type,
        reason,
        case
            when identifier_type = 'email' then lower(trim(identifier_value))
            else identifier_value
        end as identifier_value

    from {{ ref('global_suppression_list') }}

),

identifiers as (

    select * from {{ ref('int_identifiers_resolved') }}

),

matched as (

    select
        identifiers.person_id,
        min(suppression_list.reason) as suppression_reason

    from suppression_list

    inner join identifiers
        on
            suppression_list.identifier_type = identifiers.identifier_type
            and suppression_list.identifier_value = identifiers.identifier_value

    group by 1

)

select * from matched
