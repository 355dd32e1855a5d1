"""`python -m scripts.receiver`: the same command as `audiences serve-webhooks`."""

from scripts.receiver.command import serve_webhooks

if __name__ == "__main__":
    serve_webhooks(prog_name="serve-webhooks")
