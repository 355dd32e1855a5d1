{#
    The rule every model that resolves a row to a person follows, declared once: the person
    of the row's first identifier, in the order given, that the identity map knows. Each
    lookup is among identifiers of its own type, so a customer_id 'k1' never matches a
    cio_id 'k1'. Rows without a known identifier keep a null person_id.

    A select of every column of `rows` (the name of a CTE) plus person_id; the identity map
    (int_identifiers_resolved, one row per identifier) is passed in, so the calling model
    names its dependency in its own ref().
#}
{% macro person_by_identifiers(rows, identifier_types, identifiers) -%}
    select
        {{ rows }}.*,
        coalesce(
            {%- for identifier_type in identifier_types %}
            by_{{ identifier_type }}.person_id{{ "," if not loop.last }}
            {%- endfor %}
        ) as person_id

    from {{ rows }}

    {% for identifier_type in identifier_types %}
    left join (

        select
            identifier_value,
            person_id

        from {{ identifiers }}

        where identifier_type = '{{ identifier_type }}'
            and person_id is not null

    ) as by_{{ identifier_type }}
        on {{ rows }}.{{ identifier_type }} = by_{{ identifier_type }}.identifier_value
    {% endfor %}
{%- endmacro %}
