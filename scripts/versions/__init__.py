"""Audience version enforcement: fingerprints of audience definitions."""
