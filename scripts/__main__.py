"""`python -m scripts …`: the `audiences` command, for callers that have no console script
on PATH (`audiences run` starts its steps this way, with its own interpreter)."""

from scripts.cli import main

if __name__ == "__main__":
    main(prog_name="audiences")
