"""The compiled engine leaves decoded instances of atomic types out of the cyclic GC.

A type is atomic when every value its fields may hold, by their declared types,
is something the collector never tracks (numbers, bool, None, str, bytes) or an
instance of another atomic type, and no type reaches itself: enums (members
carry a ``__dict__``), arrays (lists) and recursive types are not.  The engine
decides this once per type when it loads a module's plans and untracks the
instances it decodes (docs/compiled-engine.md, "Garbage collection").

These tests restate the rule over the resolved model, in Python, and check the
engine's choice for every type of demo, libvirt, guestfs and the Debian corpus;
check that what the engine untracked really holds no object the collector could
need to see; and check that cycles through recursive types are still collected.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
from hypothesis import given

from engine_backends import require_engine
from gc_invariant import untracked_problems
from reference.harness import ProtocolUnderTest, generate_module, session_protocol
from test_engine import PROTOCOLS, _settings
from xdr_values import Encodings
from xdrgen.model import (
    Declaration,
    DeclKind,
    EnumDef,
    NamedType,
    StructDef,
    TypedefDef,
    TypeRef,
    UnionDef,
)
from xdrgen.runtime.engine import pure_codec


@pytest.fixture(autouse=True)
def _engine() -> None:
    require_engine()


@pytest.fixture(params=PROTOCOLS)
def protocol(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ProtocolUnderTest:
    return session_protocol(request.param, tmp_path_factory)


class AtomicRule:
    """The rule, restated over ``xdrgen.model`` (independent of the engine's C)."""

    def __init__(self) -> None:
        self.known: dict[int, bool] = {}
        self.visiting: set[int] = set()

    def definition(self, definition: object) -> bool:
        key = id(definition)
        if key in self.known:
            return self.known[key]
        if key in self.visiting:
            return False  # the type reaches itself
        self.visiting.add(key)
        if isinstance(definition, StructDef):
            atomic = all(self.declaration(field) for field in definition.fields)
        elif isinstance(definition, UnionDef):
            arms = [arm.declaration for arm in definition.arms]
            if definition.default is not None:
                arms.append(definition.default)
            atomic = not self._is_enum(definition.discriminant.type) and all(
                self.declaration(arm) for arm in arms
            )
        elif isinstance(definition, TypedefDef):
            atomic = self.declaration(definition.declaration)
        else:
            atomic = not isinstance(definition, EnumDef)
        self.visiting.discard(key)
        # A type found non-atomic only because an ancestor was being visited is
        # still not atomic: it is on a cycle through that ancestor.
        self.known[key] = atomic
        return atomic

    def declaration(self, declaration: Declaration) -> bool:
        kind = declaration.kind
        if kind in (DeclKind.FIXED_ARRAY, DeclKind.VAR_ARRAY):
            return False
        if kind in (DeclKind.PLAIN, DeclKind.OPTIONAL):
            assert declaration.type is not None
            return self.type(declaration.type)
        return True  # void, string, opaque: None, str, bytes

    def type(self, ref: TypeRef) -> bool:
        if isinstance(ref, NamedType):
            return self.definition(ref.definition)
        return True  # a primitive: int, float, bool, bytes (quadruple)

    def _is_enum(self, ref: TypeRef | None) -> bool:
        while isinstance(ref, NamedType):
            definition = ref.definition
            if isinstance(definition, EnumDef):
                return True
            if not isinstance(definition, TypedefDef):
                return False
            ref = definition.declaration.type
        return False


def _one_value(encodings: Encodings, type_name: str, codec: Any) -> Any:
    found: list[Any] = []

    @_settings(1)
    @given(encodings.of(type_name))
    def draw(data: bytes) -> None:
        found.append(codec.decode(data))

    draw()
    return found[0]


def test_engine_untracks_exactly_the_atomic_types(protocol: ProtocolUnderTest) -> None:
    rule = AtomicRule()
    encodings = Encodings(protocol.model)
    checked = untracked = 0
    wrong: list[str] = []
    for type_name in protocol.type_names:
        definition = protocol.model.types[type_name]
        codec = protocol.codec(type_name)
        value = _one_value(encodings, type_name, codec)
        wrong.extend(f"{type_name}: {problem}" for problem in untracked_problems(value))
        if not isinstance(definition, (StructDef, UnionDef)):
            continue
        expected = rule.definition(definition)
        checked += 1
        untracked += expected
        if gc.is_tracked(value) == expected:
            wrong.append(f"{type_name}: atomic={expected}, tracked={gc.is_tracked(value)}")
        # The pure-Python code never untracks anything.
        assert gc.is_tracked(pure_codec(codec).decode(codec.encode(value)))
    assert not wrong, "\n".join(wrong[:20])
    assert checked > 0
    if protocol.name in ("demo", "libvirt", "guestfs"):
        # Both kinds occur in the big protocols, so both branches are exercised.
        assert 0 < untracked < checked, (untracked, checked)


def test_w2_domains_are_untracked_and_their_list_is_not(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    libvirt = session_protocol("libvirt", tmp_path_factory)
    codec = libvirt.codec("remote_connect_list_all_domains_ret")
    domain = libvirt.generated.remote_nonnull_domain("vm", bytes(16), 7)
    ret = libvirt.generated.remote_connect_list_all_domains_ret([domain] * 3, 3)
    decoded = codec.decode(codec.encode(ret))
    assert gc.is_tracked(decoded) and gc.is_tracked(decoded.domains)
    assert not any(gc.is_tracked(item) for item in decoded.domains)
    assert decoded == ret


TREE_X = """
struct tree { tree *left; int value; };
struct leaf { int value; string name<>; };
struct pair { leaf first; leaf *second; };
enum color { RED = 1, BLUE = 2 };
struct painted { color shade; int count; };
union by_color switch (color shade) { case RED: int red; default: void; };
struct listed { int counts<>; };
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("engine-gc")
    x_file = directory / "tree.x"
    x_file.write_text(TREE_X)
    return generate_module(x_file, directory)


class Finalized:
    """Records its own collection."""

    collected: list[str] = []

    def __init__(self, label: str) -> None:
        self.label = label

    def __del__(self) -> None:
        Finalized.collected.append(self.label)


def test_a_cycle_through_a_recursive_type_is_collected(tree: Any) -> None:
    codec = tree.XDR_TYPES["tree"]
    node = codec.decode(b"\0\0\0\1" + b"\0\0\0\0" + b"\0\0\0\1" + b"\0\0\0\2")
    assert gc.is_tracked(node) and gc.is_tracked(node.left)
    # A well-typed cycle: the inner node points back at the outer one.
    node.left.left = node
    Finalized.collected.clear()
    node.value = Finalized("tree")  # (not an int: only to see the collection)
    del node
    gc.collect()
    assert Finalized.collected == ["tree"]


def test_atomic_nesting_is_untracked_all_the_way(tree: Any) -> None:
    pair = tree.XDR_TYPES["pair"]
    leaf = tree.leaf
    value = tree.pair(leaf(1, "a"), leaf(2, "b"))
    decoded = pair.decode(pair.encode(value))
    assert decoded == value
    assert not gc.is_tracked(decoded)
    assert not gc.is_tracked(decoded.first) and not gc.is_tracked(decoded.second)
    # Values built by the caller stay tracked: only the decoder untracks.
    assert gc.is_tracked(value)


def test_enums_and_arrays_keep_an_instance_tracked(tree: Any) -> None:
    """Enum members carry a __dict__ and arrays are lists: either could lead back
    to the instance, so the collector must keep seeing it."""
    values = {
        "painted": tree.painted(tree.color.RED, 1),
        "by_color": tree.by_color(tree.color.RED, 5),
        "listed": tree.listed([1, 2]),
    }
    for name, value in values.items():
        codec = tree.XDR_TYPES[name]
        decoded = codec.decode(codec.encode(value))
        assert decoded == value
        assert gc.is_tracked(decoded), name
