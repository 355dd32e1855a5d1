{#
    Every audience version with its definition, owner, holdout share, valid-from and
    fingerprint. Definitions come from models/audiences/_audiences.yml through dbt's graph;
    fingerprints from seeds/audience_fingerprints.csv, which `audiences versions record`
    writes and `make test` checks (an unbumped logic change fails the build of the tests).
#}

{% set registry = audience_registry() %}

with

fingerprints as (

    select
        audience_key,
        audience_version,
        fingerprint

    from {{ ref('audience_fingerprints') }}

),

definitions as (

    {% for audience in registry %}
        {%- set ns = namespace(valid_from=none, change='') -%}
        {%- for entry in audience.changelog
            if (entry.version | string) == (audience.audience_version | string) -%}
            {%- set ns.valid_from = entry.date -%}
            {%- set ns.change = entry.change -%}
        {%- endfor %}
        select
            {#- Meta was validated by audience_registry; text goes through as literals. #}
            {{ sql_string_literal(audience.audience_key) }} as audience_key,
            {{ audience.audience_version | int }} as audience_version,
            {{ sql_string_literal(audience.name) }} as audience_name,
            {{ sql_string_literal(audience.owner) }} as audience_owner,
            {{ sql_string_literal(audience.description) }} as audience_description,
            {{ sql_string_literal(ns.change) }} as version_change,
            {{ sql_string_literal(audience.relation_name) }} as relation_name,
            cast({{ audience.holdout_share }} as {{ dbt.type_numeric() }}) as holdout_share,
            {{ sql_string_literal(audience.segment_calls) }} as segment_calls,
            {{ 'true' if audience.is_synced else 'false' }} as is_synced,
            {{ 'true' if audience.is_latest else 'false' }} as is_latest,
            {{ 'purchased' in audience.exit_reasons }} as has_purchase_exit,
            {{ 'unsubscribed' in audience.exit_reasons }} as has_unsubscribe_exit,
            {{ 'email' in audience.unsubscribed_channels }} as has_email_unsubscribe_exit,
            {{ 'sms' in audience.unsubscribed_channels }} as has_sms_unsubscribe_exit,
            {{ 'suppressed' in audience.exit_reasons }} as has_suppression_exit,
            {% if ns.valid_from %}
                cast({{ sql_string_literal(ns.valid_from) }} as {{ dbt.type_timestamp() }})
            {% else %}
                cast(null as {{ dbt.type_timestamp() }})
            {% endif %} as valid_from
        {% if not loop.last %}union all{% endif %}
    {% else %}
        select
            cast(null as {{ dbt.type_string() }}) as audience_key,
            cast(null as {{ dbt.type_int() }}) as audience_version,
            cast(null as {{ dbt.type_string() }}) as audience_name,
            cast(null as {{ dbt.type_string() }}) as audience_owner,
            cast(null as {{ dbt.type_string() }}) as audience_description,
            cast(null as {{ dbt.type_string() }}) as version_change,
            cast(null as {{ dbt.type_string() }}) as relation_name,
            cast(null as {{ dbt.type_numeric() }}) as holdout_share,
            cast(null as {{ dbt.type_string() }}) as segment_calls,
            cast(null as {{ dbt.type_boolean() }}) as is_synced,
            cast(null as {{ dbt.type_boolean() }}) as is_latest,
            cast(null as {{ dbt.type_boolean() }}) as has_purchase_exit,
            cast(null as {{ dbt.type_boolean() }}) as has_unsubscribe_exit,
            cast(null as {{ dbt.type_boolean() }}) as has_email_unsubscribe_exit,
            cast(null as {{ dbt.type_boolean() }}) as has_sms_unsubscribe_exit,
            cast(null as {{ dbt.type_boolean() }}) as has_suppression_exit,
            cast(null as {{ dbt.type_timestamp() }}) as valid_from
        where false
    {% endfor %}

),

definitions_joined_to_fingerprints as (

    select
        ---------- ids
        {{ generate_surrogate_key(['definitions.audience_key', 'definitions.audience_version']) }}
            as audience_version_id,
        definitions.audience_key,

        ---------- strings
        definitions.audience_name,
        definitions.audience_owner,
        definitions.audience_description,
        definitions.version_change,
        definitions.relation_name,
        definitions.segment_calls,
        fingerprints.fingerprint,

        ---------- numerics
        definitions.audience_version,
        definitions.holdout_share,

        ---------- booleans
        definitions.is_synced,
        definitions.is_latest,
        definitions.has_purchase_exit,
        definitions.has_unsubscribe_exit,
        definitions.has_email_unsubscribe_exit,
        definitions.has_sms_unsubscribe_exit,
        definitions.has_suppression_exit,

        ---------- timestamps
        definitions.valid_from

    from definitions

    left join fingerprints
        on
            definitions.audience_key = fingerprints.audience_key
            and definitions.audience_version = fingerprints.audience_version

)

select * from definitions_joined_to_fingerprints
