{{ audience(
    audience_signals(
        metrics=['clicked'],
        channels=['email', 'sms'],
        link_url_like='%/cart%',
        human_only=true,
        within_hours=7 * 24,
    ),
    no_purchase_since_signal=true,
    unsubscribed_channels='any',
    suppress_spam_complaints=true,
) }}
