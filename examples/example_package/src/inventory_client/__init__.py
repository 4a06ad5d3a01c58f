"""A tiny helper package over the module xdrgen generates from demo.x at build time."""

from __future__ import annotations

from inventory_client import demo_protocol as protocol
from inventory_client.demo_protocol import demo_dimensions, demo_kind

__all__ = ["kind_name", "pack_dimensions", "protocol", "unpack_dimensions"]

_DIMENSIONS = protocol.XDR_TYPES["demo_dimensions"]


def pack_dimensions(width_m: float, height_m: float, weight_kg: float) -> bytes:
    """The XDR encoding of a ``demo_dimensions`` (two floats and a double: 16 bytes)."""
    return _DIMENSIONS.encode(demo_dimensions(width_m, height_m, weight_kg))


def unpack_dimensions(data: bytes) -> demo_dimensions:
    value: demo_dimensions = _DIMENSIONS.decode(data)
    return value


def kind_name(number: int) -> str:
    """The .x name of a ``demo_kind`` value."""
    return demo_kind(number).name
