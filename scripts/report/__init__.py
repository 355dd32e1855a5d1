"""`audiences report`: what the audiences look like now."""
