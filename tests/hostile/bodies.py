"""Seeded random payloads: the same seed gives the same bytes on every run and machine.

``XDRGEN_HOSTILE_SEED`` overrides the default seed (to explore); failures print
the seed and the index of the body, so a case can be replayed alone.
"""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Iterator, Sequence

DEFAULT_SEED = 0x11B0D1E5


def seed() -> int:
    return int(os.environ.get("XDRGEN_HOSTILE_SEED", str(DEFAULT_SEED)), 0)


def _string(rng: random.Random) -> bytes:
    """An XDR string whose bytes are often not UTF-8 (and sometimes lie about their length)."""
    n = rng.choice([0, 1, 2, 3, 5, 8, 17, 64])
    raw = bytes(rng.choice([0xFF, 0xFE, 0xC3, 0x80, 0xED, 0xA0, 0x00, 0x41, 0x7F]) for _ in range(n))
    declared = n if rng.random() < 0.8 else rng.choice([n + 1, n + 100, 0x7FFFFFFF, 0xFFFFFFFF])
    return struct.pack(">I", declared) + raw + b"\0" * (-n % 4)


def body(rng: random.Random) -> bytes:
    """One payload: random bytes, zeros, strings, lying lengths, or a mix."""
    kind = rng.randrange(8)
    if kind >= 6:
        # Shapes that decode for many procedures: a name, or an object (name, uuid, id) and flags.
        name = _string(rng) if rng.random() < 0.5 else struct.pack(">I", 2) + b"\xff\xfe\0\0"
        return name if kind == 6 else name + rng.randbytes(16) + struct.pack(">ii", rng.randrange(-1, 3), 0)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 200))
    if kind == 1:
        return bytes(rng.randrange(0, 64) * 4)
    if kind == 2:
        return b"".join(_string(rng) for _ in range(rng.randrange(1, 4))) + bytes(rng.randrange(0, 5) * 4)
    if kind == 3:
        # Fields of an args struct with a string first (most procedures take an object first).
        return _string(rng) + rng.randbytes(16) + struct.pack(">i", rng.randrange(-2, 3)) + bytes(rng.randrange(0, 4) * 4)
    if kind == 4:
        return struct.pack(">I", rng.choice([0xFFFFFFFF, 0x10000000, 0x7FFFFFF0, 33554432])) + rng.randbytes(rng.randrange(0, 12))
    return rng.randbytes(rng.randrange(0, 8)) + _string(rng)


def calls(procedures: Sequence[int], count: int, rng_seed: int, favoured: Sequence[int] = ()) -> Iterator[tuple[int, bytes]]:
    """``count`` (procedure, payload) pairs drawn from ``procedures``, half of them from ``favoured``."""
    rng = random.Random(rng_seed)
    for _ in range(count):
        pool = favoured if favoured and rng.random() < 0.5 else procedures
        yield rng.choice(pool), body(rng)
