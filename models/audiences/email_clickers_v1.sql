{# Human email clickers of the last 30 days, minus anyone in cart recovery right now (v2). #}
{{ audience(
    audience_signals(
        metrics=['clicked'],
        channels=['email'],
        human_only=true,
        within_hours=30 * 24,
    ),
    unsubscribed_channels=['email'],
    suppress_spam_complaints=true,
    exclude_audiences={'cart_recovery_clicked_no_purchase': 2},
) }}
