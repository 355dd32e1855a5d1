"""`python -m scripts.segment_sync segment ...`: the same command as `audiences sync segment`."""

from scripts.segment_sync.command import sync

if __name__ == "__main__":
    sync(prog_name="audiences sync")
