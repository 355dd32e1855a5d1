{# Bought in the last 30 days: a suppression list for prospecting and retargeting ads. #}
{{ audience(
    audience_purchasers(within_days=30),
    unsubscribed_channels=none,
    suppress_spam_complaints=false,
) }}
