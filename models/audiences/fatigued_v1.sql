{# Frequency control: 6+ email/SMS sends in 7 days keeps a person out of paid for a while. #}
{{ audience(
    audience_signals(
        metrics=['sent'],
        channels=['email', 'sms'],
        human_only=false,
        min_signals=6,
        within_hours=7 * 24,
    ),
    unsubscribed_channels=none,
    suppress_spam_complaints=false,
    suppress_global_list=false,
) }}
