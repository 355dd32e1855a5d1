{# Cart-recovery campaigns: 102 (email, 1 h and 24 h), 103 (SMS, 4 h). #}
{{ audience(
    audience_signals(
        metrics=['clicked'],
        channels=['email', 'sms'],
        campaign_ids=['102', '103'],
        link_url_like='%/cart%',
        human_only=true,
        within_hours=7 * 24,
    ),
    no_purchase_since_signal=true,
    unsubscribed_channels='any',
    suppress_spam_complaints=true,
) }}
