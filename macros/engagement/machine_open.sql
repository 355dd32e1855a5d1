{#
    Whether an open was made by a machine, from the flags Customer.io puts on opens. Which
    flags count is the project variable machine_open_flags (docs/customerio-events.md):
    Customer.io's spec says `prefetched` means "opened by Gmail, Apple Privacy Protection,
    or a user agent identified as a machine", while `proxied` means only "fetched by a
    proxy to hide the user identity", which human opens through such a proxy also carry.
    True when any chosen flag is true, false when a chosen flag is known false (and none is
    true), null when the source did not say.
#}
{% macro machine_open(flag_columns) -%}
    {%- set allowed = ['prefetched', 'proxied'] -%}
    {%- set chosen = var('machine_open_flags') -%}
    {%- for flag in chosen if flag not in allowed -%}
        {{ exceptions.raise_compiler_error(
            "machine_open_flags: unknown flag '" ~ flag ~ "'; allowed: " ~ allowed | join(', ')
        ) }}
    {%- endfor -%}
    {%- if chosen | length == 0 -%}
        false
    {%- else -%}
        case
            when {% for flag in chosen %}{{ flag_columns[flag] }}{% if not loop.last %} or {% endif %}{% endfor %}
                then true
            when {% for flag in chosen %}{{ flag_columns[flag] }} = false{% if not loop.last %} or {% endif %}{% endfor %}
                then false
        end
    {%- endif -%}
{%- endmacro %}
