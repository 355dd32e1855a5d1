{#
    The project variable segment_identity_policy, checked: user_id_only (a member without a
    user id is skipped and counted) or user_id_or_email (such a member is sent with an
    anonymousId derived from the email). Read here only, so a typo fails the build.
#}
{% macro segment_identity_policy() -%}
    {%- set policy = var('segment_identity_policy') -%}
    {%- if policy not in ['user_id_only', 'user_id_or_email'] -%}
        {{ exceptions.raise_compiler_error(
            "segment_identity_policy must be user_id_only or user_id_or_email, not '"
            ~ policy ~ "'"
        ) }}
    {%- endif -%}
    {{ return(policy) }}
{%- endmacro %}
