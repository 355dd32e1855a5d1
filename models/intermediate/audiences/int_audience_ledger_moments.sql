{%- set rebuild_ledger = var('rebuild_ledger', false) -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=(rebuild_ledger is sameas true),
    )
}}
{#
    The moments at which the membership ledger (fct_audience_membership_changes) looked at
    the audiences: one row per build that writes history, whether or not anyone entered or
    left. The ledger's own rows only show builds where something changed, and an exit
    reason needs the build before: a purchase only ended a membership if it came after the
    last moment the person was seen still a member (they may have bought, clicked again and
    stayed in).
    Kept like the ledger: a real moment is appended, a replay (an as_of at or before the
    latest moment), a future as_of and an --empty run add nothing; --full-refresh leaves it
    alone and `rebuild_ledger: true` starts it over with the ledger.
#}

{%- set writes_history = not as_of_is_future() and not is_empty_run() %}

with

moment as (

    select {{ as_of_timestamp() }} as evaluated_at

),

{% if is_incremental() %}
    latest_look as (

        select
            coalesce(
                max(evaluated_at), cast('1900-01-01' as {{ dbt.type_timestamp() }})
            ) as evaluated_at

        from {{ this }}

    ),
{% endif %}

final as (

    select moment.evaluated_at

    from moment

    {% if is_incremental() %}
        cross join latest_look
    {% endif %}

    where
        {% if is_incremental() -%}
            moment.evaluated_at > latest_look.evaluated_at and
        {% endif -%}
        {{ 'true' if writes_history else 'false' }}

)

select * from final
