"""Identifier shapes Customer.io, Segment and the shop use, drawn from one seeded RNG.

Built from lookup tables and integer formatting rather than `uuid`/`ulid` helpers:
these run once per event (10M+ per large run), so every microsecond shows.
"""

from __future__ import annotations

import random
from binascii import b2a_base64

# Crockford base32, the ULID alphabet (no I, L, O, U).
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits -> 2 characters
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_MASK48 = (1 << 48) - 1
_MASK64 = (1 << 64) - 1


class IdMaker:
    """All random identifiers of one shard; deterministic for the RNG it is given."""

    __slots__ = ("_bits",)

    def __init__(self, rng: random.Random) -> None:
        self._bits = rng.getrandbits

    def ulid(self, ts: int) -> str:
        """26-character ULID-like id: time part `ts` (Unix s) + random ms, 64 random bits.

        The random part is 16 hex digits, a subset of the Crockford alphabet, so the id
        still decodes as a ULID; 64 bits keep collisions negligible at 10^8 events.
        """
        r = self._bits(74)
        ms = ts * 1000 + (r >> 64) % 1000
        pairs = _PAIRS
        return (
            f"{pairs[ms >> 40]}{pairs[(ms >> 30) & 1023]}{pairs[(ms >> 20) & 1023]}"
            f"{pairs[(ms >> 10) & 1023]}{pairs[ms & 1023]}{r & _MASK64:016X}"
        )

    def delivery_id(self) -> str:
        """Customer.io delivery id shape: `R` + base64url, e.g. `RPILAgUBcRhIBqSfeiIw...`."""
        raw = b2a_base64(self._bits(144).to_bytes(18, "big"), newline=False)
        return "R" + raw.translate(_URLSAFE).decode()

    def uuid4(self) -> str:
        """A version-4 UUID string, the shape Segment libraries use for `messageId`."""
        h = f"{self._bits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def token(self, nbytes: int = 8) -> str:
        """Lowercase hex token (cart tokens, device tokens)."""
        return f"{self._bits(nbytes * 8):0{nbytes * 2}x}"


def cio_id_for(person_index: int, salt: int) -> str:
    """12 hex characters, unique per index: an odd multiplier is a bijection mod 2^48."""
    return f"{(person_index * 0x9E3779B97F4B + salt) & _MASK48:012x}"
