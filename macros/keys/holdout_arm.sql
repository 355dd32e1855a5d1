{#
    Deterministic holdout assignment: a person's arm depends only on the audience key (the
    salt) and their person_id, so it is stable across runs and across versions of the same
    audience, and independent between audiences. The first four hex digits of an md5 are
    compared as fixed-width text, which orders like the number they spell on every engine.
#}
{% macro holdout_arm(person_id_column, audience_key, holdout_share) -%}
    {%- set share = holdout_share | float -%}
    {%- if share <= 0 -%}
        'treatment'
    {%- else -%}
        {%- set threshold = '%04x' % ([(share * 65536) | int, 65535] | min) -%}
        case
            when substring(
                {{ dbt.hash(dbt.concat(["'" ~ audience_key ~ ":'", person_id_column])) }},
                1,
                4
            ) < '{{ threshold }}' then 'holdout'
            else 'treatment'
        end
    {%- endif -%}
{%- endmacro %}
