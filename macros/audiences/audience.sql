{#
    A whole macro-built audience: `signals` (from audience_signals, audience_absence or
    audience_purchasers) followed by the shared suppressions. Keyword arguments other than
    `signals` go to audience_apply_suppressions. Returns person_id, signal_at, count_signals.
#}
{% macro audience(signals) -%}
with

signals as (

    {{ signals }}

),

members as (

    {{ audience_apply_suppressions('signals', **kwargs) }}

)

select * from members
{%- endmacro %}
