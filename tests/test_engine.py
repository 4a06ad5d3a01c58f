"""The compiled engine (xdrgen.runtime._engine) against the pure-Python code behind it.

Both backends must give the same values (same types, same enum members), the
same bytes and the same errors (class, message, field path, offset), on random
valid encodings and damaged ones of demo.x, libvirt's and guestfs's protocols
and the Debian corpus; on invalid values; on deep nesting.  Also: which types
the engine runs (all of them today), XDRGEN_PURE=1 and a missing engine give
pure Python, an engine that refuses what the pure code accepts says so, and
repeated encode/decode/error paths leak no references.
"""

from __future__ import annotations

import copy
import gc
import os
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from corpus import CORPUS
from engine_backends import require_engine
from reference.harness import ProtocolUnderTest, generate_module, session_protocol
from xdr_values import Encodings, mutations
from xdrgen.runtime.codec import Codec
from xdrgen.runtime.engine import backend, pure_codec
from xdrgen.runtime.errors import XdrEngineMismatch, XdrError

REPO = Path(__file__).resolve().parents[1]
DEMO_X = REPO / "protocols" / "demo.x"

#: Examples per type (libvirt and guestfs have ~700 types each).
EXAMPLES = {"demo": 40, "libvirt": 3, "guestfs": 3}
CORPUS_EXAMPLES = 8


@pytest.fixture(autouse=True)
def _engine() -> None:
    require_engine()


def outcome(
    call: Callable[..., Any], *args: Any, show: Callable[[Any], object] = repr
) -> tuple[object, ...]:
    """What a call gives: its value shown by ``show`` (repr shows enum members and
    classes), or its XdrError's class, text, path and offset."""
    try:
        result = call(*args)
    except XdrError as error:
        return ("error", type(error), str(error), error.path, error.offset)
    return ("value", type(result), show(result))


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


PROTOCOLS = ["demo", "libvirt", "guestfs", *(entry.name for entry in CORPUS)]


@pytest.fixture(params=PROTOCOLS)
def protocol(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ProtocolUnderTest:
    return session_protocol(request.param, tmp_path_factory)


def test_the_engine_runs_every_type(protocol: ProtocolUnderTest) -> None:
    pure = [
        name
        for name, codec in protocol.generated.XDR_TYPES.items()
        if backend(codec) != "engine"
    ]
    assert pure == []


def test_same_values_bytes_and_errors(protocol: ProtocolUnderTest) -> None:
    encodings = Encodings(protocol.model)
    examples = EXAMPLES.get(protocol.name, CORPUS_EXAMPLES)
    failures: list[str] = []
    for type_name in protocol.type_names:
        engine = protocol.codec(type_name)
        pure = pure_codec(engine)
        assert pure is not engine

        @_settings(examples)
        @given(encodings.of(type_name))
        def valid(data: bytes) -> None:
            for buffer in (data, bytearray(data), memoryview(data)):
                ours = outcome(engine.decode, buffer)
                assert ours == outcome(pure.decode, buffer), data.hex()
            value = engine.decode(data)
            assert engine.encode(value) == pure.encode(value) == data
            head = bytearray(b"head")
            engine.encode_into(head, value)
            assert head == b"head" + data
            framed = b"\0" * 8 + data + b"tail"
            assert outcome(engine.decode_from, framed, 8) == outcome(
                pure.decode_from, framed, 8
            )

        @_settings(examples)
        @given(mutations(encodings.of(type_name)))
        def damaged(data: bytes) -> None:
            assert outcome(engine.decode, data) == outcome(pure.decode, data), data.hex()
            assert outcome(engine.decode_from, data, 0) == outcome(
                pure.decode_from, data, 0
            ), data.hex()

        try:
            valid()
            damaged()
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            failures.append(f"{type_name}: {type(exc).__name__}: {exc}")
    assert not failures, "\n\n".join(failures[:10])


# -- invalid values: the same error, the same partial output -----------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return generate_module(DEMO_X, tmp_path_factory.mktemp("engine-demo"))


def _item(demo: Any) -> Any:
    return demo.demo_item(
        uuid=bytes(range(16)),
        name="widget",
        kind=demo.DEMO_KIND_TOOL,
        quantity=5,
        created=-3,
        size_bytes=2**40,
        mode=0o644,
        active=True,
        dimensions=demo.demo_dimensions(1.5, 2.0, 3.25),
        tags=["a", "bb", "ccc"],
        description="d\u00e9j\u00e0 vu",
        ratings=[1, -2, 3],
        also_kinds=[demo.DEMO_KIND_PART],
        counters=[1, 2, 3, 2**64 - 1],
        vendor="",
        thumbnail=b"\x01\x02\x03",
        sha256=bytes(32),
    )


class _IntLike:
    def __index__(self) -> int:
        return 7


class _Sub(str):
    pass


#: (field, bad value) of demo_item: every rule of every kind of field.
BAD_ITEM_FIELDS: list[tuple[str, object]] = [
    ("uuid", b"short"),
    ("uuid", "not bytes"),
    ("uuid", memoryview(bytes(16))),
    ("uuid", bytearray(16)),
    ("name", "x" * 65),
    ("name", b"bytes"),
    ("name", "\udc80surrogate"),
    ("name", "\ud800lone"),
    ("name", _Sub("subclass")),
    ("kind", 12345),
    ("kind", 1.0),
    ("kind", "DEMO_KIND_TOOL"),
    ("kind", True),
    ("quantity", -1),
    ("quantity", 2**32),
    ("quantity", 2**100),
    ("quantity", _IntLike()),
    ("quantity", 3.0),
    ("created", 2**63),
    ("size_bytes", -1),
    ("size_bytes", 2**64),
    ("active", 2),
    ("active", 1),
    ("active", 1.0),
    ("active", None),
    ("dimensions", "not a struct"),
    ("dimensions", None),
    ("tags", ["ok"] * 17),
    ("tags", ("a", "b")),
    ("tags", "abc"),
    ("tags", ["ok", 5]),
    ("tags", None),
    ("ratings", [1, 2]),
    ("ratings", [1, 2, 2**31]),
    ("also_kinds", [0, 0, 0]),
    ("also_kinds", [99]),
    ("counters", [1, 2, 3, -4]),
    ("thumbnail", bytes(1025)),
    ("thumbnail", "text"),
    ("thumbnail", memoryview(b"abcd")),
    ("sha256", bytes(31)),
]


@pytest.mark.parametrize(("field", "bad"), BAD_ITEM_FIELDS, ids=repr)
def test_bad_values_fail_alike(demo: Any, field: str, bad: object) -> None:
    engine = demo.XDR_TYPES["demo_item_create_args"]
    pure = pure_codec(engine)
    item = _item(demo)
    setattr(item, field, bad)
    value = demo.demo_item_create_args(item=item, flags=1)
    assert outcome(engine.encode, value) == outcome(pure.encode, value)
    # encode_into: the same error and the same bytes left in the buffer.
    mine, theirs = bytearray(b"keep"), bytearray(b"keep")
    assert outcome(engine.encode_into, mine, value) == outcome(
        pure.encode_into, theirs, value
    )
    assert mine == theirs


def test_dimension_floats(demo: Any) -> None:
    engine = demo.XDR_TYPES["demo_dimensions"]
    pure = pure_codec(engine)
    for width in (3.5e38, float("inf"), float("nan"), -0.0, 2**200, 1, True, "1"):
        value = demo.demo_dimensions(width, 1.0, 2.0)
        assert outcome(engine.encode, value) == outcome(pure.encode, value), width
    # A float32 NaN with a payload keeps its bits (the engine leaves it to Python).
    data = bytes.fromhex("7f800001") + bytes(12)
    assert engine.encode(engine.decode(data)) == data


def test_unions_and_lists(demo: Any) -> None:
    cases: list[tuple[str, Any]] = [
        ("demo_value", demo.demo_value(demo.DEMO_KIND_TOOL, 3)),
        ("demo_value", demo.demo_value(demo.DEMO_KIND_ARCHIVED, "ignored")),
        ("demo_value", demo.demo_value(demo.DEMO_KIND_UNKNOWN, "note")),
        ("demo_value", demo.demo_value(77, "not a member")),
        ("demo_value", demo.demo_value(2**40, "too wide")),
        ("demo_value", demo.demo_value(1.0, 3)),
        ("demo_value", demo.demo_value(demo.DEMO_KIND_TOOL, -1)),
        ("demo_setting", demo.demo_setting(9, None)),
        ("demo_setting", demo.demo_setting(-1, "void arm, value unread")),
        ("demo_setting", demo.demo_setting(5, 2)),
        ("demo_maybe_name", demo.demo_maybe_name(True, "n")),
        ("demo_maybe_name", demo.demo_maybe_name(False)),
        ("demo_maybe_name", demo.demo_maybe_name(2, "n")),
        ("demo_limit", demo.demo_limit(3, 2**64 - 1)),
        ("demo_limit", demo.demo_limit(2**32, None)),
        ("demo_limit", demo.demo_limit(-5, None)),
    ]
    node = demo.demo_item_node(_item(demo), None)
    cases.append(("demo_item_node", node))
    chain = demo.demo_item_node(_item(demo), demo.demo_item_node(_item(demo), None))
    cases.append(("demo_item_node", chain))
    loop = demo.demo_item_node(_item(demo), None)
    loop.next = demo.demo_item_node(_item(demo), loop)
    cases.append(("demo_item_node", loop))
    unset = demo.demo_item_node.__new__(demo.demo_item_node)
    cases.append(("demo_item_node", unset))
    cases.append(("demo_item", copy.copy(_item(demo))))
    cases.append(("demo_item", "not an item"))
    for type_name, value in cases:
        engine = demo.XDR_TYPES[type_name]
        pure = pure_codec(engine)
        ours = outcome(engine.encode, value)
        assert ours == outcome(pure.encode, value), (type_name, value)
        if ours[0] == "value":
            data = engine.encode(value)
            assert outcome(engine.decode, data) == outcome(pure.decode, data)


def test_decode_from_arguments(demo: Any) -> None:
    engine = demo.XDR_TYPES["demo_count"]
    pure = pure_codec(engine)
    data = b"\0\0\0\7\0\0\0\x08"
    for offset in (0, 4, 8, -4, 9, 2**70):
        assert outcome(engine.decode_from, data, offset) == outcome(
            pure.decode_from, data, offset
        ), offset
    assert engine.decode_from(data) == (7, 4)


# -- nesting ----------------------------------------------------------------------

TREE_X = """
struct tree { tree *left; int value; };
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("engine-tree")
    x_file = directory / "tree.x"
    x_file.write_text(TREE_X)
    return generate_module(x_file, directory)


@pytest.mark.parametrize("depth", [1, 150, 250, 3000])
def test_deep_nesting_alike(tree: Any, depth: int) -> None:
    """Shallow data on the engine, deeper than its limit (200) on the pure code;
    beyond Python's recursion limit both give the same depth error."""
    from xdrgen.runtime import _engine

    assert _engine.MAX_DEPTH == 200
    engine = tree.XDR_TYPES["tree"]
    pure = pure_codec(engine)
    data = b"\0\0\0\1" * depth + b"\0\0\0\0" + b"\0\0\0\5" * (depth + 1)
    # (repr would recurse too deeply: the values are compared by their encoding)
    ours = outcome(engine.decode, data, show=pure.encode)
    assert ours == outcome(pure.decode, data, show=pure.encode)
    if depth < 1000:
        value = engine.decode(data)
        assert engine.encode(value) == pure.encode(value) == data
    else:
        kind = ours[1]
        assert isinstance(kind, type) and kind.__name__ == "XdrDepthError"


# -- mismatch, XDRGEN_PURE, no engine ----------------------------------------------


def _lenient_codec() -> Codec[Any]:
    """A codec whose 'pure' functions accept anything: the engine's int plan
    refuses 2**40, so the two disagree."""

    def encode_into(buffer: bytearray, value: Any) -> None:
        buffer += b"any!"

    def decode_from(data: Any, offset: int) -> tuple[Any, int]:
        return "anything", len(data)

    return Codec("lenient", encode_into, decode_from)


def test_an_engine_that_refuses_what_python_accepts_says_so() -> None:
    from xdrgen.runtime import _engine

    codec = _lenient_codec()
    assert _engine.install(("lenient - V i",), {}, {"lenient": codec}) == 1
    assert backend(codec) == "engine"
    assert codec.encode(5) == b"\0\0\0\5"  # the engine's own result
    with pytest.raises(XdrEngineMismatch, match="lenient: the compiled engine refused"):
        codec.encode(2**40)
    buffer = bytearray()
    with pytest.raises(XdrEngineMismatch):
        codec.encode_into(buffer, -(2**40))
    with pytest.raises(XdrEngineMismatch):
        codec.decode(b"\0\0\0")  # truncated for the engine, fine for "Python"
    # Declined inputs (not errors) go to the pure code, whose answer stands.
    assert codec.encode(_IntLike()) == b"any!"


def test_plans_the_engine_cannot_run_stay_pure() -> None:
    from xdrgen.runtime import _engine

    plans = (
        "a - V k nowhere.thing",  # an imported module that is not there
        "b - V k a",  # calls a type that stays pure
        "c - V Z",  # a node the engine does not know
        "d - V i extra",  # trailing tokens
        "e NotAClass T 1 x i",
        "f - V i",
    )
    codecs = {name: _lenient_codec() for name in "abcdef"}
    assert _engine.install(plans, {}, codecs) == 1
    assert [n for n, c in codecs.items() if backend(c) == "engine"] == ["f"]


def _run(code: str, **env: str) -> str:
    environment = {**os.environ, **env, "PYTHONPATH": f"{REPO}:{REPO / 'generated'}"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    return result.stdout.strip()


CHECK = """
    import demo
    from xdrgen.runtime.engine import backend
    kinds = {backend(c) for c in demo.XDR_TYPES.values()}
    value = demo.XDR_TYPES["demo_tags"].decode(b"\\0\\0\\0\\1\\0\\0\\0\\1a\\0\\0\\0")
    print(sorted(kinds), value)
"""


def test_xdrgen_pure_forces_pure_python() -> None:
    assert _run(CHECK, XDRGEN_PURE="0") == "['engine'] ['a']"
    assert _run(CHECK, XDRGEN_PURE="1") == "['pure'] ['a']"


def test_without_the_engine_modules_run_pure_python() -> None:
    blocked = "import sys\nsys.modules['xdrgen.runtime._engine'] = None\n" + textwrap.dedent(
        CHECK
    )
    assert _run(blocked) == "['pure'] ['a']"


# -- references and memory --------------------------------------------------------


def test_no_leaks_on_success_and_error_paths(demo: Any) -> None:
    """Many encode/decode rounds, valid and failing: no object's refcount grows,
    nor the number of objects, nor traced memory."""
    args = demo.XDR_TYPES["demo_item_create_args"]
    value_codec = demo.XDR_TYPES["demo_value"]
    node_codec = demo.XDR_TYPES["demo_item_node"]
    good = demo.demo_item_create_args(item=_item(demo), flags=1)
    data = args.encode(good)
    bad_item = _item(demo)
    bad_item.tags = ["x"] * 40
    bad = demo.demo_item_create_args(item=bad_item, flags=1)
    chain = demo.demo_item_node(_item(demo), demo.demo_item_node(_item(demo), None))
    chain_data = node_codec.encode(chain)
    union = demo.demo_value(demo.DEMO_KIND_UNKNOWN, "note")
    union_data = value_codec.encode(union)
    watched = [
        demo.demo_item,
        demo.demo_item_node,
        demo.demo_kind,
        demo.DEMO_KIND_TOOL,
        demo.DEMO_KIND_UNKNOWN,
        good,
        bad,
        chain,
        union,
        data,
        args,
    ]

    def rounds(n: int) -> None:
        for i in range(n):
            args.decode(data)
            args.encode(good)
            buffer = bytearray()
            args.encode_into(buffer, good)
            args.decode_from(data + b"xx", 0)
            node_codec.decode(chain_data)
            node_codec.encode(chain)
            value_codec.decode(union_data)
            value_codec.encode(union)
            for call, arg in (
                (args.encode, bad),
                (args.decode, data[: i % len(data)]),
                (args.decode, data + b"\0\0\0\0"),
                (node_codec.decode, chain_data[:-1]),
                (value_codec.decode, b"\0\0\0\x63"),
            ):
                try:
                    call(arg)
                except XdrError:
                    pass

    rounds(200)  # warm caches (formats, interned strings)
    gc.collect()
    before = [sys.getrefcount(o) for o in watched]
    objects = len(gc.get_objects())
    tracemalloc.start()
    try:
        rounds(50)
        gc.collect()
        first, _ = tracemalloc.get_traced_memory()
        rounds(2000)
        gc.collect()
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    after = [sys.getrefcount(o) for o in watched]
    assert after == before
    assert len(gc.get_objects()) - objects < 100
    assert second - first < 64 * 1024, (first, second)


# -- the built module ---------------------------------------------------------------


def test_the_engine_exports_only_its_init() -> None:
    """The engine is several C files in one shared object (xdrgen/runtime/_engine_c/):
    what they share between them (types, functions) stays hidden inside it."""
    from xdrgen.runtime import _engine

    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("needs nm (binutils) to list the engine's dynamic symbols")
    listing = subprocess.run(
        [nm, "-D", "--defined-only", _engine.__file__],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    exported = sorted(
        fields[2]
        for fields in (line.split() for line in listing.splitlines())
        if len(fields) == 3 and fields[1].isupper()
    )
    assert exported == ["PyInit__engine"]
