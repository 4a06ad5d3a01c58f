"""A tiny XDR writer/reader for the few libvirt payloads the runtime tests build by hand.

Private to the tests, used until the generated remote_protocol module exists;
procedure numbers are read from the real remote_protocol.x (never copied).
"""

from __future__ import annotations

import builtins
import re
import struct
from pathlib import Path


class Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def int(self, v: builtins.int) -> Writer:
        self.buf += struct.pack(">i", v)
        return self

    def uint(self, v: builtins.int) -> Writer:
        self.buf += struct.pack(">I", v)
        return self

    def uhyper(self, v: builtins.int) -> Writer:
        self.buf += struct.pack(">Q", v)
        return self

    def opaque_fixed(self, b: bytes) -> Writer:
        self.buf += b + b"\0" * (-len(b) % 4)
        return self

    def string(self, s: str) -> Writer:
        raw = s.encode()
        self.uint(len(raw))
        return self.opaque_fixed(raw)

    def opt_string(self, s: str | None) -> Writer:
        if s is None:
            return self.uint(0)
        self.uint(1)
        return self.string(s)

    def bytes(self) -> bytes:
        return bytes(self.buf)


class Reader:
    def __init__(self, data: bytes | memoryview) -> None:
        self.data = bytes(data)
        self.pos = 0

    def int(self) -> builtins.int:
        (v,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return int(v)

    def uint(self) -> builtins.int:
        (v,) = struct.unpack_from(">I", self.data, self.pos)
        self.pos += 4
        return int(v)

    def uhyper(self) -> builtins.int:
        (v,) = struct.unpack_from(">Q", self.data, self.pos)
        self.pos += 8
        return int(v)

    def opaque_fixed(self, n: builtins.int) -> bytes:
        b = self.data[self.pos : self.pos + n]
        self.pos += n + (-n % 4)
        return b

    def string(self) -> str:
        n = self.uint()
        return self.opaque_fixed(n).decode()

    def opt_string(self) -> str | None:
        return self.string() if self.uint() else None

    def done(self) -> bool:
        return self.pos == len(self.data)


def procedure_numbers(remote_protocol_x: Path) -> dict[str, int]:
    """REMOTE_PROC_* name -> number, read from the real .x file."""
    text = remote_protocol_x.read_text()
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"\b(REMOTE_PROC_\w+)\s*=\s*(\d+)", text)
    }
