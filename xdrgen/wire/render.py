"""Decoded XDR values as an indented, readable tree (one field per line)."""

from __future__ import annotations

import enum
from typing import Any

from xdrgen.runtime.codec import XdrStruct

#: Opaque data longer than this is shown as its first bytes and its size.
BYTES_SHOWN = 32


def render_value(value: Any, indent: str = "") -> list[str]:
    """Lines for ``value``; the first line has no indent (it follows a label)."""
    if isinstance(value, XdrStruct):
        names: tuple[str, ...] = type(value).__slots__
        lines = [type(value).__name__]
        for name in names:
            lines.extend(_field(name, getattr(value, name, None), indent + "  "))
        return lines
    if isinstance(value, list):
        if not value:
            return ["[] (0 items)"]
        lines = [f"[{len(value)} item{'s' if len(value) != 1 else ''}]"]
        for index, item in enumerate(value):
            lines.extend(_field(f"[{index}]", item, indent + "  "))
        return lines
    return [render_scalar(value)]


def render_scalar(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return f"{value.name} ({value.value})"
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        shown = data[:BYTES_SHOWN].hex()
        more = "..." if len(data) > BYTES_SHOWN else ""
        return f"{len(data)} bytes {shown}{more}" if data else "0 bytes"
    return repr(value)


def _field(label: str, value: Any, indent: str) -> list[str]:
    first, *rest = render_value(value, indent)
    return [f"{indent}{label}: {first}", *rest]
