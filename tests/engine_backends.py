"""Both marshalling backends in one test: the compiled engine and pure Python.

Generated modules run the engine (``xdrgen.runtime._engine``) when it is built;
:func:`both_backends` gives a codec on each backend so a test checks the same
inputs through both.  Without the engine, CI (``XDRGEN_REQUIRE_PEERS=1`` or
``XDRGEN_REQUIRE_ENGINE=1``) fails: ``.ci/run`` builds it
(``python3 -m xdrgen._build_engine``); elsewhere only pure Python is tested.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from xdrgen.runtime.codec import PRIMITIVE_CODECS, VOID
from xdrgen.runtime.engine import backend, load_engine, pure_codec

BUILD_HINT = "build it with: python3 -m xdrgen._build_engine"


def engine_required() -> bool:
    return "1" in (
        os.environ.get("XDRGEN_REQUIRE_PEERS"),
        os.environ.get("XDRGEN_REQUIRE_ENGINE"),
    )


def engine_available() -> bool:
    return load_engine() is not None


def require_engine() -> None:
    """Skip (or, in CI, fail) when the compiled engine is not built."""
    if engine_available():
        return
    message = f"the compiled engine is not built or XDRGEN_PURE=1 ({BUILD_HINT})"
    if engine_required():
        pytest.fail(message + " (required: XDRGEN_REQUIRE_PEERS/ENGINE=1)")
    pytest.skip(message)


def both_backends(codec: Any) -> list[Any]:
    """``[engine codec, pure codec]``, or ``[pure codec]`` without the engine (a
    failure in CI, where every type must run on the engine).  A test's composite
    of codecs gives its own pair through a ``both_backends()`` method."""
    own = getattr(codec, "both_backends", None)
    if own is not None:
        pair: list[Any] = own()
        return pair
    if backend(codec) == "engine":
        return [codec, pure_codec(codec)]
    if any(codec is c for c in (*PRIMITIVE_CODECS.values(), VOID)):
        return [codec]  # the runtime's built-in codecs (struct calls) are not planned
    if engine_required() and engine_available():
        raise AssertionError(f"{codec.name}: the engine does not run this type")
    if engine_required():
        pytest.fail(f"the compiled engine is not built ({BUILD_HINT})")
    return [codec]
