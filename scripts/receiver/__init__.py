"""Customer.io reporting-webhook receiver: verify, land durably, rotate files."""
