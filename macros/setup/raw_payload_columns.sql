{#
    The values the loaders copy out of each payload as text when a row lands, per raw
    table: column -> path (a list of keys), in the loaders' order (PAYLOAD_FIELDS in
    scripts/loaders/webhooks.py and segment_events.py;
    tests/loaders/test_payload_columns.py checks that both sides agree). The staging models
    read them through payload_columns(); on Spark, where the raw tables are filled by the
    platform's own ingestion and keep their original shape, the same paths are parsed.
#}
{% macro raw_payload_columns() %}
    {{ return({
        'raw_customerio.webhook_events': {
            'delivery_id': ['data', 'delivery_id'],
            'campaign_id': ['data', 'campaign_id'],
            'broadcast_id': ['data', 'broadcast_id'],
            'newsletter_id': ['data', 'newsletter_id'],
            'action_id': ['data', 'action_id'],
            'journey_id': ['data', 'journey_id'],
            'transactional_message_id': ['data', 'transactional_message_id'],
            'identifiers_id': ['data', 'identifiers', 'id'],
            'identifiers_cio_id': ['data', 'identifiers', 'cio_id'],
            'identifiers_email': ['data', 'identifiers', 'email'],
            'email_address': ['data', 'email_address'],
            'href': ['data', 'href'],
            'failure_message': ['data', 'failure_message'],
            'recipient': ['data', 'recipient'],
            'prefetched': ['data', 'prefetched'],
            'proxied': ['data', 'proxied'],
            'machine': ['data', 'machine'],
        },
        'raw_customerio_segment.tracks': {
            'delivery_id': ['properties', 'delivery_id'],
            'campaign_id': ['properties', 'campaign_id'],
            'broadcast_id': ['properties', 'broadcast_id'],
            'newsletter_id': ['properties', 'newsletter_id'],
            'action_id': ['properties', 'action_id'],
            'journey_id': ['properties', 'journey_id'],
            'transactional_message_id': ['properties', 'transactional_message_id'],
            'href': ['properties', 'href'],
            'link_url': ['properties', 'link_url'],
            'failure_message': ['properties', 'failure_message'],
            'recipient': ['properties', 'recipient'],
            'traits_email': ['context', 'traits', 'email'],
            'prefetched': ['properties', 'prefetched'],
            'proxied': ['properties', 'proxied'],
            'machine': ['properties', 'machine'],
        },
    }) }}
{% endmacro %}
