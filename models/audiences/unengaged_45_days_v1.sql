{# Win-back: reachable on email or SMS, no human open or click there for 45 days. #}
{{ audience(
    audience_absence(channels=['email', 'sms'], days=45),
    unsubscribed_channels='any',
    suppress_spam_complaints=true,
    suppress_hard_bounces=true,
) }}
