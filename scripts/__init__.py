"""Engagement Audiences: loaders, demo data and the Segment sync behind the `audiences` CLI."""
