"""Hand a generated module's marshalling plans to the compiled engine, if present.

Generated modules call :func:`install` once, at import, after their codecs are
made.  When ``xdrgen.runtime._engine`` imports and ``XDRGEN_PURE`` is not ``1``, the
engine prepares one program per type and puts its ``encode``, ``decode``,
``encode_into`` and ``decode_from`` in the codec; the module's pure-Python
functions stay behind it, and run whenever the engine meets an error or an
input it leaves to them (docs/compiled-engine.md).  Otherwise nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from xdrgen.runtime.codec import Codec


def load_engine() -> ModuleType | None:
    """``xdrgen.runtime._engine``, or None when it is not built or ``XDRGEN_PURE=1``."""
    if os.environ.get("XDRGEN_PURE") == "1":
        return None
    try:
        from xdrgen.runtime import _engine
    except ImportError:
        return None
    return _engine


def install(
    namespace: dict[str, Any],
    plans: tuple[str, ...],
    codecs: Mapping[str, Codec[Any]],
) -> int:
    """Run ``plans`` (one per type, xdrgen/generator/engine_plan.py) on the engine
    for ``codecs`` (by type name; names not found there are looked up in
    ``namespace``, the module's globals).  Returns how many types the engine runs."""
    engine = load_engine()
    if engine is None:
        return 0
    count: int = engine.install(plans, namespace, dict(codecs))
    return count


def backend(codec: Codec[Any]) -> str:
    """``"engine"`` when the compiled engine runs ``codec``, else ``"pure"``."""
    owner = getattr(codec.encode, "__self__", None)
    return "engine" if type(owner).__module__ == "xdrgen.runtime._engine" else "pure"


def pure_codec(codec: Codec[Any]) -> Codec[Any]:
    """A codec running only the pure-Python functions behind ``codec`` (itself
    when the engine does not run it): tests compare the two backends with it."""
    owner: Any = getattr(codec.encode, "__self__", None)
    if type(owner).__module__ != "xdrgen.runtime._engine":
        return codec
    pure: Codec[Any] = Codec.__new__(Codec)
    pure.name = codec.name
    pure.encode = owner.pure_encode
    pure.decode = owner.pure_decode
    pure.encode_into = owner.pure_encode_into
    pure.decode_from = owner.pure_decode_from
    return pure
