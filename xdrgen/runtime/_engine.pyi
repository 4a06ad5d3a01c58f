"""The optional compiled marshalling engine (built from _engine_c/*.c)."""

from collections.abc import Mapping
from typing import Any

MAX_DEPTH: int

class Program:
    name: str
    pure_encode: Any
    pure_decode: Any
    pure_encode_into: Any
    pure_decode_from: Any
    def encode(self, value: Any, /) -> bytes: ...
    def decode(self, data: Any, /) -> Any: ...
    def encode_into(self, buffer: bytearray, value: Any, /) -> None: ...
    def decode_from(self, data: Any, offset: int = 0, /) -> tuple[Any, int]: ...

def install(
    plans: tuple[str, ...], namespace: dict[str, Any], codecs: Mapping[str, Any], /
) -> int: ...
