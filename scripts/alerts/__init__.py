"""Alerts: Slack-compatible webhook messages when a scheduled run needs a human."""
