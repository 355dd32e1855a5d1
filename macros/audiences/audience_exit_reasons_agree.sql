{#
    The audience's suppressions are declared once, as audience_apply_suppressions arguments
    in its SQL; the ledger labels exits from `exit_reasons` / `unsubscribed_channels` in
    _audiences.yml (through dim_audiences). This stops the build, and `audiences versions
    check`, when the two disagree, saying what the yml must read:
    purchased     no_purchase_since_signal, or purchased_within_days set
    unsubscribed  unsubscribed_channels not none; a list also names the channels
    suppressed    any of suppress_spam_complaints, suppress_hard_bounces,
                  suppress_global_list
    Meta that is itself invalid is left to audience_registry, which lists every such
    problem at once; judging it here too would report whichever model compiled first.
#}
{% macro audience_exit_reasons_agree(
    no_purchase_since_signal,
    purchased_within_days,
    unsubscribed_channels,
    suppress_spam_complaints,
    suppress_hard_bounces,
    suppress_global_list
) -%}
    {%- set node = model if model is defined and model is mapping else {} -%}
    {%- set meta = ((node.get('config') or {}).get('meta') or {}).get('audience') -%}
    {%- if execute and meta is mapping
        and not audience_meta_problems(node.get('name', ''), meta) -%}
        {%- set implied = [] -%}
        {%- if no_purchase_since_signal or purchased_within_days is not none -%}
            {%- do implied.append('purchased') -%}
        {%- endif -%}
        {%- if unsubscribed_channels is not none -%}
            {%- do implied.append('unsubscribed') -%}
        {%- endif -%}
        {%- if suppress_spam_complaints or suppress_hard_bounces or suppress_global_list -%}
            {%- do implied.append('suppressed') -%}
        {%- endif -%}
        {%- set implied_channels = [] if unsubscribed_channels in [none, 'any']
            else unsubscribed_channels -%}
        {%- set declared = meta.get('exit_reasons') or [] -%}
        {%- set declared_channels = meta.get('unsubscribed_channels') or [] -%}
        {%- if (declared | sort) != (implied | sort)
            or (declared_channels | sort) != (implied_channels | sort) -%}
            {{ exceptions.raise_compiler_error(
                "audience " ~ node.name ~ ": its suppressions (audience_apply_suppressions "
                ~ "arguments in " ~ node.original_file_path ~ ") cause the exits "
                ~ "exit_reasons: " ~ implied | tojson ~ ", unsubscribed_channels: "
                ~ implied_channels | list | tojson ~ " but models/audiences/_audiences.yml "
                ~ "declares exit_reasons: " ~ declared | list | tojson
                ~ ", unsubscribed_channels: " ~ declared_channels | list | tojson
                ~ ". Make the yml say what the SQL does."
            ) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
