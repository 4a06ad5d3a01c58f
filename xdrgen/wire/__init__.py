"""Reading captured byte streams: framing readers (pure functions over bytes) and
the dissector that names procedures and decodes payloads with a generated module."""

from xdrgen.wire.errors import WireError

__all__ = ["WireError"]
