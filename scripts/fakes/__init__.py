"""Local stand-ins for external APIs, served on 127.0.0.1 for tests and the demo."""
