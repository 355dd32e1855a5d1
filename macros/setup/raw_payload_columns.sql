{#
    The columns the loaders copy out of each payload as text when a row lands
    (PAYLOAD_FIELDS in scripts/loaders/webhooks.py and segment_events.py), per raw table,
    in the loaders' order: the staging models read them instead of parsing the payload.
    tests/loaders/test_payload_columns.py checks that these lists and the loaders' agree.
#}
{% macro raw_payload_columns() %}
    {{ return({
        'raw_customerio.webhook_events': [
            'delivery_id', 'campaign_id', 'broadcast_id', 'newsletter_id', 'action_id',
            'journey_id', 'transactional_message_id', 'identifiers_id',
            'identifiers_cio_id', 'identifiers_email', 'email_address', 'href',
            'failure_message', 'recipient', 'prefetched', 'proxied', 'machine',
        ],
        'raw_customerio_segment.tracks': [
            'delivery_id', 'campaign_id', 'broadcast_id', 'newsletter_id', 'action_id',
            'journey_id', 'transactional_message_id', 'href', 'link_url',
            'failure_message', 'recipient', 'traits_email', 'prefetched', 'proxied',
            'machine',
        ],
    }) }}
{% endmacro %}
