"""Special cases of the debug-CPython reference check, run BY tests/engine_refcount_driver.py.

The per-type cases of the driver put valid, damaged and invalid inputs through
every type; these reach the paths they cannot:

- nesting beyond the engine's MAX_DEPTH (the pure code takes over) and beyond
  Python's recursion limit (XdrDepthError), on ``struct tree { tree *left; int
  value; }``;
- XdrEngineMismatch: a lenient "pure" codec that accepts what the engine refuses;
- inputs the engine declines to the pure code (docs/compiled-engine.md): float32
  NaNs, lone surrogates and undecodable strings, subclasses and duck-typed
  values, arrays of elements of no bytes;
- import time: ``_engine.install`` of every module's plans into fresh codecs
  (and of plans it cannot run), and a generated module executed into fresh
  module objects, all dropped again.

Each call's outcome (returns, or raises a given class) is checked once before
measuring, so a case is known to take the path it is meant for.  Only the
standard library and ``xdrgen.runtime`` are imported (a debug interpreter has no
third-party packages).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from xdrgen.runtime.codec import Codec
from xdrgen.runtime.engine import backend, pure_codec
from xdrgen.runtime.errors import (
    XdrDecodeError,
    XdrDepthError,
    XdrEncodeError,
    XdrEngineMismatch,
)

#: One call of a case: a label, the call, and the class it must raise (None: it returns).
Call = tuple[str, Callable[[], object], type[BaseException] | None]
#: Beyond Python's recursion limit (1000) for the pure code, far beyond MAX_DEPTH.
TOO_DEEP = 3000


class Calls:
    """A named list of calls, made each round; what the driver measures."""

    def __init__(self, calls: list[Call]) -> None:
        self.calls = calls
        self.unexpected: dict[str, None] = {}
        self.failing = sum(1 for _, _, expected in calls if expected is not None)
        for label, call, expected in calls:
            got = _outcome(call)
            if got is not expected:
                self.unexpected[f"{label}: {got} (expected {expected})"] = None

    def operations(self) -> int:
        return len(self.calls)

    def run(self, rounds: int) -> None:
        for _ in range(rounds):
            for _, call, _ in self.calls:
                try:
                    call()
                except Exception:  # noqa: BLE001 - checked once in __init__
                    pass


def _outcome(call: Callable[[], object]) -> type[BaseException] | None:
    try:
        call()
    except Exception as error:  # noqa: BLE001 - compared with what is expected
        return type(error)
    return None


def _codec_calls(
    label: str, codec: Any, data: bytes, value: object, expected: type[BaseException] | None
) -> list[Call]:
    """Decode ``data`` and encode ``value`` by all four methods of ``codec``."""
    return [
        *_decode_calls(label, codec, data, expected),
        *_encode_calls(label, codec, value, expected),
    ]


def _encode_calls(
    label: str, codec: Any, value: object, expected: type[BaseException] | None
) -> list[Call]:
    return [
        (f"{label} encode", lambda: codec.encode(value), expected),
        (f"{label} encode_into", lambda: codec.encode_into(bytearray(b"head"), value), expected),
    ]


def _decode_calls(
    label: str, codec: Any, data: bytes, expected: type[BaseException] | None
) -> list[Call]:
    framed = b"\0" * 4 + data
    return [
        (f"{label} decode", lambda: codec.decode(data), expected),
        (f"{label} decode_from", lambda: codec.decode_from(framed, 4), expected),
    ]


# -- nesting --------------------------------------------------------------------------


def _tree_bytes(depth: int) -> bytes:
    return b"\0\0\0\1" * depth + b"\0\0\0\0" + b"\0\0\0\5" * (depth + 1)


def _tree_value(klass: Any, depth: int) -> object:
    """A tree ``depth`` levels deep, built without decoding (too deep for that)."""
    node = None
    for _ in range(depth + 1):
        parent = klass.__new__(klass)
        parent.left, parent.value = node, 5
        node = parent
    return node


def nesting(edges: Any, max_depth: int) -> dict[str, Calls]:
    """Trees within the engine's limit, beyond it, and beyond Python's recursion
    limit (XdrDepthError decoding; encoding says the value nests too deeply)."""
    tree = edges.XDR_TYPES["tree"]
    cases = {}
    for depth in (max_depth - 50, max_depth + 50):
        data = _tree_bytes(depth)
        calls = _codec_calls(f"tree {depth}", tree, data, tree.decode(data), None)
        cases[f"nesting {depth}"] = Calls(calls)
    too_deep = _tree_value(edges.tree, TOO_DEEP)
    cases[f"nesting {TOO_DEEP}"] = Calls(
        [
            *_decode_calls(f"tree {TOO_DEEP}", tree, _tree_bytes(TOO_DEEP), XdrDepthError),
            *_encode_calls(f"tree {TOO_DEEP}", tree, too_deep, XdrEncodeError),
        ]
    )
    return cases


# -- XdrEngineMismatch ---------------------------------------------------------------


class IntLike:
    """An int by ``__index__`` only: the engine declines it."""

    def __index__(self) -> int:
        return 1


def mismatch(engine: Any) -> Calls:
    """A codec whose 'pure' functions accept anything the engine's int plan refuses."""

    def encode_into(buffer: bytearray, value: Any) -> None:
        buffer += b"any!"

    def decode_from(data: Any, offset: int) -> tuple[Any, int]:
        return "anything", len(data)

    codec: Codec[Any] = Codec("lenient", encode_into, decode_from)
    if engine.install(("lenient - V i",), {}, {"lenient": codec}) != 1:
        raise SystemExit("the lenient codec is not on the engine")
    return Calls(
        [
            ("encode 2**40", lambda: codec.encode(2**40), XdrEngineMismatch),
            (
                "encode_into -2**40",
                lambda: codec.encode_into(bytearray(), -(2**40)),
                XdrEngineMismatch,
            ),
            ("decode truncated", lambda: codec.decode(b"\0\0\0"), XdrEngineMismatch),
            (
                "decode_from truncated",
                lambda: codec.decode_from(b"\0\0\0\0\0\0\0", 4),
                XdrEngineMismatch,
            ),
            ("encode declined", lambda: codec.encode(IntLike()), None),
        ]
    )


# -- declined inputs -----------------------------------------------------------------


def _reading(edges: Any, **fields: object) -> Any:
    klass: Any = fields.pop("klass", edges.reading)
    values: dict[str, object] = {
        "level": 1.5,
        "exact": 2.5,
        "label": "ok",
        "raw": b"ab",
        "count": 7,
    }
    values.update(fields)
    value = klass.__new__(klass)
    for name, field in values.items():
        setattr(value, name, field)
    return value


class _Text(str):
    pass


class _Count(int):
    pass


def declined(edges: Any) -> dict[str, Calls]:
    reading = edges.XDR_TYPES["reading"]
    holder = edges.XDR_TYPES["holder"]
    plain = reading.encode(_reading(edges))
    cases: dict[str, Calls] = {}

    nans = []
    for bits in (b"\x7f\xc0\x00\x01", b"\xff\x80\x00\x01", b"\x7f\xc0\x00\x00"):
        data = bits + plain[4:]
        nans += _codec_calls(f"NaN {bits.hex()}", reading, data, reading.decode(data), None)
    nans += _encode_calls("float('nan')", reading, _reading(edges, level=float("nan")), None)
    cases["float32 NaN"] = Calls(nans)

    lone = _reading(edges, label="a\udc80b")
    undecodable = plain.replace(b"\0\0\0\2ok\0\0", b"\0\0\0\2\xff\xfe\0\0")
    cases["lone surrogates"] = Calls(
        [
            *_encode_calls("lone surrogate", reading, lone, None),
            *_decode_calls("undecodable", reading, undecodable, None),
            *_encode_calls("lone surrogate only", reading, _reading(edges, label="\udcff"), None),
        ]
    )

    sub = types.new_class("SubReading", (edges.reading,))
    cases["subclasses and duck types"] = Calls(
        [
            *_encode_calls("subclass instance", reading, _reading(edges, klass=sub), None),
            *_encode_calls("str subclass", reading, _reading(edges, label=_Text("x")), None),
            *_encode_calls("int subclass", reading, _reading(edges, count=_Count(3)), None),
            *_encode_calls("__index__", reading, _reading(edges, count=IntLike()), None),
            *_encode_calls("memoryview", reading, _reading(edges, raw=memoryview(b"abc")), None),
            *_encode_calls("bytearray", reading, _reading(edges, raw=bytearray(b"abc")), None),
            *_encode_calls("float subclass", reading, _reading(edges, level=_Count(2)), None),
        ]
    )

    full = holder.decode(b"\0\0\0\3" + b"\0\0\0\2" + b"\0\0\0\1")
    cases["elements of no bytes"] = Calls(
        [
            *_codec_calls("3 and 2 elements", holder, holder.encode(full), full, None),
            *_decode_calls("huge count", holder, b"\xff\xff\xff\xff" + b"\0" * 8, XdrDecodeError),
        ]
    )
    return cases


# -- import time ---------------------------------------------------------------------


def _fresh(namespace: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A copy of a module's namespace and codecs with only the pure functions, so
    that a new install neither touches the live module nor wraps its programs."""
    names = {k: pure_codec(v) if isinstance(v, Codec) else v for k, v in namespace.items()}
    codecs = {k: pure_codec(v) for k, v in namespace["XDR_TYPES"].items()}
    return names, codecs


def install(engine: Any, module: Any) -> Calls:
    """The module's plans installed again into fresh codecs (as many types on the
    engine as at import), and all of it dropped."""
    on_engine = sum(1 for c in _fresh(vars(module))[0].values() if isinstance(c, Codec))
    at_import = engine.install(module._ENGINE_PLANS, *_fresh(vars(module)))

    def again() -> None:
        count = engine.install(module._ENGINE_PLANS, *_fresh(vars(module)))
        if count != at_import or count == 0:
            raise AssertionError(f"installed {count} of {on_engine}, {at_import} at first")

    return Calls([(f"install {module.__name__}", again, None)])


BAD_PLANS = (
    "a - V k nowhere.thing",  # an imported module that is not there
    "b - V k a",  # calls a type that stays pure
    "c - V Z",  # a node the engine does not know
    "d - V i extra",  # trailing tokens
    "e NotAClass T 1 x i",  # a class that is not there
    "f - V i",
    "g NotAType T 1 x i",  # a name that is not a class
    "h - V e NotAType",  # an enum that is not a class
)
#: What NotAType names.
NOT_A_TYPE = object()


def unrunnable(engine: Any) -> Calls:
    """Plans the engine cannot run: their partial programs are dropped at load."""

    def load() -> None:
        codecs = {name: Codec(name, _no_encode, _no_decode) for name in "abcdefgh"}
        if engine.install(BAD_PLANS, {"NotAType": NOT_A_TYPE}, codecs) != 1:
            raise AssertionError("expected only f on the engine")

    return Calls([("install unrunnable plans", load, None)])


def _no_encode(buffer: bytearray, value: object) -> None:
    raise AssertionError("not called")


def _no_decode(data: object, offset: int) -> tuple[object, int]:
    raise AssertionError("not called")


def execute(module: Any) -> Calls:
    """The generated module run again into a fresh module object: its classes,
    codecs and engine programs made (``_engine.install`` at import) and dropped."""
    with open(module.__file__, encoding="utf-8") as handle:
        code = compile(handle.read(), module.__file__, "exec")

    def run() -> None:
        fresh = types.ModuleType(module.__name__)
        fresh.__file__ = module.__file__
        exec(code, fresh.__dict__)  # noqa: S102 - the generated module itself
        if backend(fresh.XDR_TYPES[next(iter(fresh.XDR_TYPES))]) != "engine":
            raise AssertionError("not on the engine")

    return Calls([(f"exec {module.__name__}", run, None)])
