{# Clicked the replenishment reminder, 48 h later still no order: a 3-day ad window. #}
{{ audience(
    audience_signals(
        metrics=['clicked'],
        channels=['email', 'sms', 'push'],
        link_url_like='%/products/%',
        human_only=true,
        at_least_hours=48,
        within_hours=48 + 72,
    ),
    no_purchase_since_signal=true,
    unsubscribed_channels='any',
    suppress_spam_complaints=true,
) }}
