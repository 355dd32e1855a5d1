{# SMS clickers of the last 30 days, kept apart from email clickers: they behave differently;
   minus anyone in cart recovery (v2) right now. #}
{{ audience(
    audience_signals(
        metrics=['clicked'],
        channels=['sms'],
        human_only=true,
        within_hours=30 * 24,
    ),
    unsubscribed_channels=['sms'],
    suppress_spam_complaints=true,
    exclude_audiences={'cart_recovery_clicked_no_purchase': 2},
) }}
