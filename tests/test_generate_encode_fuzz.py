"""Encoding any Python object with any generated codec succeeds or raises an XdrError.

For every type of demo.x, libvirt's remote_protocol.x and guestfs_protocol.x a
valid value is drawn, then broken in many places, one place at a time: the value
or a field replaced by None, a wrong class, an out-of-range int, str for bytes
and bytes for str, lists grown past their bound, union discriminants without an
arm, and cycles (an object holding itself or the root).  Encoding each broken
value must either produce bytes that decode, or raise an ``XdrEncodeError``
naming the type and a field path at or below the broken place - never a raw
AttributeError, TypeError, struct.error, RecursionError, a hang or a traceback.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from engine_backends import both_backends
from test_generate_helpers import DEMO_X, Strategies, generated_module, model_of
from xdrgen.generator.names import field_name
from xdrgen.runtime.codec import XdrStruct
from xdrgen.runtime.errors import XdrDecodeError, XdrEncodeError

#: Broken places tried per drawn value (chosen at random, seeded).
PLACES_PER_VALUE = 12
EXAMPLES = {"demo": 12, "remote_protocol": 2, "guestfs_protocol": 2}


class _Odd:
    """An object of no XDR type at all."""

    __slots__ = ()


def _xdr_field(attr: str) -> str:
    """The .x name of a struct field's attribute (the inverse of ``field_name``;
    union attributes get ``ARM`` paths instead)."""
    base = attr[:-1]
    if attr.endswith("_") and field_name(base) == attr:
        return base
    return attr


#: Stands for a union arm's name in an expected path (it depends on the discriminant).
ARM = "\0arm"


def _join(path: str, segment: str) -> str:
    if not path:
        return segment
    if segment.startswith("[") or path.endswith(ARM):
        return path + segment if segment.startswith("[") else f"{path}.{segment}"
    return f"{path}.{segment}"


def _path_pattern(place: str) -> re.Pattern[str]:
    """Error paths allowed for a value broken at ``place``: it or anything below."""
    parts = [re.escape(p) for p in place.split(ARM)]
    # The arm's name may be missing when the arm's value itself was unreadable.
    text = "(?:(?:^|\\.)?[A-Za-z_0-9]+)?".join(parts)
    return re.compile(f"^{text}(?:$|[.\\[])" if place else "")


Setter = Callable[[Any], None]


def _places(value: Any, path: str = "") -> Iterator[tuple[str, Any, Setter]]:
    """(field path, current value, setter) for every place inside ``value``.

    A union's discriminant and arm get its path plus ``ARM`` (the arm's name
    depends on the discriminant).
    """
    if isinstance(value, XdrStruct):
        slots: tuple[str, ...] = value.__slots__
        is_union = "value" in slots and len(slots) == 2
        for attr in slots:
            inner = getattr(value, attr)
            if is_union:
                # A new discriminant may select another arm, which then fails.
                where = path + ARM
            else:
                where = _join(path, _xdr_field(attr))

            def setter(new: Any, obj: Any = value, name: str = attr) -> None:
                setattr(obj, name, new)

            yield where, inner, setter
            yield from _places(inner, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            where = _join(path, f"[{index}]")

            def set_item(new: Any, lst: list[Any] = value, i: int = index) -> None:
                lst[i] = new

            yield where, item, set_item
            yield from _places(item, where)


def _replacements(current: Any, root: Any) -> list[Any]:
    """Wrong values for a place now holding ``current``."""
    wrong: list[Any] = [None, _Odd(), 2**70, -(2**70), -1, 1.5, "x", b"x", [None], {}]
    if isinstance(current, str):
        wrong += [
            current.encode("utf-8", "surrogateescape"),
            "\ud800" + current,
            "y" * 70000,
        ]
    if isinstance(current, bytes):
        wrong += [current.decode("latin-1"), list(current) or [1], b"z" * 70000]
    if isinstance(current, list):
        wrong += [current + current[:1] * 3000, current * 2 + [_Odd()], tuple(current)]
    if isinstance(current, XdrStruct):
        wrong += [current, root]  # a cycle through itself or through the root
        wrong.append(type(current).__new__(type(current)))  # slots unset
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        wrong += [current + 2**32, -current - 1, float("inf"), float("nan")]
    return wrong


_CHAIN = re.compile(r"(\w+)\*(\d+)")


def _expand_chains(path: str) -> str:
    """``next*12.item`` (how errors name a node deep in a linked list) spelled out."""
    return _CHAIN.sub(lambda m: ".".join([m.group(1)] * int(m.group(2))), path)


def _encoded(codec: Any, value: Any) -> tuple[object, ...]:
    try:
        return ("bytes", codec.encode(value))
    except XdrEncodeError as err:
        return ("error", type(err), str(err), err.path)


def _check_one(codec: Any, broken: Any, place: str) -> None:
    backends = both_backends(codec)  # the compiled engine and pure Python
    if len(backends) == 2:
        assert _encoded(backends[0], broken) == _encoded(backends[1], broken), place
    try:
        data = codec.encode(broken)
    except XdrEncodeError as err:
        assert err.type_name == codec.name, (place, err)
        assert _path_pattern(place).match(_expand_chains(err.path)), (place, str(err))
        text = str(err)
        assert codec.name in text and err.path in text
        return
    # Accepted (e.g. 1.5 where a float was): the bytes must be a valid encoding.
    assert isinstance(data, bytes) and len(data) % 4 == 0
    try:
        codec.decode(data)
    except XdrDecodeError as err:
        # docs/compatibility.md difference 9: a list of more elements of no bytes
        # than the encoding has bytes is written (as rpcgen writes it) and refused
        # by our decoder, which never sizes a list by a declared count alone.
        if "elements that take no bytes" not in str(err):
            raise


def fuzz_value(codec: Any, value: Any, rng: random.Random) -> int:
    """Break ``value`` itself, then up to PLACES_PER_VALUE places inside it, one at
    a time (restoring each); returns the number of cases tried."""
    tried = 0
    for wrong in _replacements(value, value):
        _check_one(codec, wrong, "")
        tried += 1
    places = list(_places(value))
    chosen = rng.sample(range(len(places)), min(len(places), PLACES_PER_VALUE))
    for index in chosen:
        path, current, setter = places[index]
        for wrong in _replacements(current, value):
            setter(wrong)
            try:
                _check_one(codec, value, path)
            finally:
                setter(current)
            tried += 1
    codec.encode(value)  # restored: still valid
    return tried


def run_all_types(source: Path, examples: int) -> int:
    model = model_of(source)
    module = generated_module(source)
    strategies = Strategies(model, module)
    total = 0
    for name in model.types:
        codec = module.XDR_TYPES[name]
        rng = random.Random(name)

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategies.for_type(name))
        def fuzz(value: Any) -> None:
            nonlocal total
            total += fuzz_value(codec, value, rng)

        try:
            fuzz()
        except Exception as exc:
            raise AssertionError(f"encoding broken {name} values: {exc!r}") from exc
    return total


def test_demo_every_type_rejects_wrong_values_with_xdr_errors() -> None:
    assert run_all_types(DEMO_X, EXAMPLES["demo"]) > 1000


def test_libvirt_every_type_rejects_wrong_values_with_xdr_errors(
    remote_protocol_x: Path, libvirt_header: Path
) -> None:
    assert run_all_types(remote_protocol_x, EXAMPLES["remote_protocol"]) > 10000


def test_guestfs_every_type_rejects_wrong_values_with_xdr_errors(
    guestfs_protocol_x: Path,
) -> None:
    assert run_all_types(guestfs_protocol_x, EXAMPLES["guestfs_protocol"]) > 5000


def test_cyclic_linked_list_is_an_error_not_a_hang() -> None:
    demo = generated_module(DEMO_X)
    codec = demo.XDR_TYPES["demo_item_node"]
    item = demo.XDR_TYPES["demo_item"].decode(
        demo.XDR_TYPES["demo_item"].encode(_any_item(demo))
    )
    nodes = [demo.demo_item_node(item=item, next=None) for _ in range(5)]
    for a, b in zip(nodes, nodes[1:]):
        a.next = b
    assert codec.decode(codec.encode(nodes[0])) == nodes[0]
    for back in range(5):
        nodes[-1].next = nodes[back]
        try:
            codec.encode(nodes[0])
        except XdrEncodeError as err:
            assert "cycle" in str(err) and err.type_name == "demo_item_node"
            assert err.path.startswith("next"), str(err)
        else:
            raise AssertionError("a cyclic list was encoded")


def test_cyclic_tree_is_an_error(tmp_path: Path) -> None:
    """Non-tail recursion: Python's recursion limit becomes an XdrEncodeError."""
    source = tmp_path / "cyc.x"
    source.write_text("struct cyc { cyc *left; cyc *right; int value; };\n")
    module: Any = generated_module(source)
    node = module.cyc(left=None, value=1, right=None)
    node.right = node
    codec = module.XDR_TYPES["cyc"]
    calls: list[Callable[[], object]] = [
        lambda: codec.encode(node),
        lambda: codec.encode_into(bytearray(), node),
    ]
    for call in calls:
        try:
            call()
        except XdrEncodeError as err:
            assert "nests too deeply" in str(err) and err.path.startswith("right.right")
            assert len(err.path) <= 200
        else:
            raise AssertionError("a cyclic tree was encoded")


def _any_item(demo: Any) -> Any:
    return demo.demo_item(
        uuid=bytes(16),
        name="n",
        kind=demo.DEMO_KIND_TOOL,
        quantity=1,
        created=0,
        size_bytes=0,
        mode=0,
        active=False,
        dimensions=None,
        tags=[],
        description="",
        ratings=[1, 2, 3],
        also_kinds=[],
        counters=[0, 0, 0, 0],
        vendor="v",
        thumbnail=b"",
        sha256=bytes(32),
    )
