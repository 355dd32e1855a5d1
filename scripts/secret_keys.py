"""Keys pasted from a vendor's page into the environment: what no key holds.

Customer.io's App API keys and Segment's write keys are printable ASCII without spaces.
Anything else (a line break or a space pasted with the key, a typographic quote, bytes
that are not UTF-8) is a slip of the operator's: an HTTP library then refuses the header
with an exception that may quote the key, or the vendor answers 401 and a run retries in
vain; and a blank key would make every space of the output "the secret" to redact.
"""

from __future__ import annotations


def odd_character_at(key: str) -> int | None:
    """The 1-based position of the first character no key holds, or None."""
    return next((at + 1 for at, char in enumerate(key) if not "!" <= char <= "~"), None)


def describe_odd_character(name: str, key: str, at: int) -> str:
    """The refusal, naming the position and never the key."""
    return (
        f"{name} holds a character no key has, at position {at} of {len(key)} (a line "
        "break, a space or a non-ASCII character: pasted with the end of a line?); "
        "export the key alone"
    )
