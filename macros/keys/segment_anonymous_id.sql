{#
    The Segment anonymousId of a person known only by email: 'anon-email-' + md5 of the
    normalized (trimmed, lower-case) email. Deterministic, so every run and every engine
    gives the same person the same id; the prefix lets the sync tell it from a userId
    (scripts/segment_sync/payloads.py, ANONYMOUS_ID_PREFIX) and keeps the raw address out of
    the id. The email itself travels as a trait so Segment can merge the profile later.
#}
{% macro segment_anonymous_id(email_column) -%}
    {{ dbt.concat(["'anon-email-'", dbt.hash("lower(trim(" ~ email_column ~ "))")]) }}
{%- endmacro %}
