{# Clicked the replenishment reminder, 48 h later still no order: a 3-day ad window.
    Campaign 104 is the 30-day replenishment flow (email + push). #}
{{ audience(
    audience_signals(
        metrics=['clicked'],
        channels=['email', 'sms', 'push'],
        campaign_ids=['104'],
        link_url_like='%/products/%',
        human_only=true,
        at_least_hours=48,
        within_hours=48 + 72,
    ),
    no_purchase_since_signal=true,
    unsubscribed_channels='any',
    suppress_spam_complaints=true,
) }}
