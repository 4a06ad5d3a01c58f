"""Reading the bytes ``decode`` and ``dissect`` work on: a file or stdin, binary or hex."""

from __future__ import annotations

import sys
from pathlib import Path

from xdrgen.diagnostics import error


def read_input(name: str, *, hex_text: bool) -> bytes:
    if name == "-":
        raw = sys.stdin.buffer.read()
        shown = "<stdin>"
    else:
        try:
            raw = Path(name).read_bytes()
        except OSError as exc:
            raise error(f"{name}: cannot read: {exc.strerror}") from None
        shown = name
    return parse_hex(raw, shown) if hex_text else raw


def parse_hex(raw: bytes, shown: str) -> bytes:
    """Hex digits with any whitespace, ``#`` comments to the end of a line."""
    digits = bytearray()
    line = 1
    for text_line in raw.split(b"\n"):
        body = text_line.split(b"#", 1)[0]
        for column, byte in enumerate(body, 1):
            if chr(byte) in " \t\r\f\v":
                continue
            if chr(byte) not in "0123456789abcdefABCDEF":
                raise error(f"{shown}:{line}:{column}: {chr(byte)!r} is not a hex digit")
            digits.append(byte)
        line += 1
    if len(digits) % 2:
        raise error(f"{shown}: odd number of hex digits ({len(digits)})")
    return bytes.fromhex(digits.decode("ascii"))
