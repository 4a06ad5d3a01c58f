"""Defects the schema fuzzer found, each shrunk to a .x under tests/xfiles/fuzz_*.x.

For every file: rpcgen's C and the generated module agree on valid encodings,
values built in Python, damaged bytes and hostile lengths (the fuzzer's own
checks, tests/reference/rules.py), and the module passes ``mypy --strict``.
Then each defect is pinned with values; docs/testing.md lists what was wrong.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, get_args, get_origin

import pytest

from reference.harness import require_reference
from reference.rpcgen_ref import Reference
from reference.rules import check_value
from schemafuzz.runner import Limits, Totals, check_types, mypy_problems, prepare_file

XFILES = Path(__file__).with_name("xfiles")
FILES = sorted(path.name for path in XFILES.glob("fuzz_*.x"))


class Loaded:
    def __init__(self, x_file: Path, workdir: Path) -> None:
        self.x_file = x_file
        self.model, self.module, self.reference = prepare_file(x_file, workdir, Totals())

    def codec(self, name: str) -> Any:
        return self.module.XDR_TYPES[name]


_LOADED: dict[str, Loaded] = {}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Loaded]]:
    require_reference()
    yield _LOADED
    for item in _LOADED.values():
        item.reference.close()
    _LOADED.clear()


def _load(loaded: dict[str, Loaded], name: str, tmp: pytest.TempPathFactory) -> Loaded:
    if name not in loaded:
        loaded[name] = Loaded(XFILES / name, tmp.mktemp(name.removesuffix(".x")))
    return loaded[name]


@pytest.mark.parametrize("name", FILES)
def test_every_type_agrees_with_rpcgen(
    name: str, loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    item = _load(loaded, name, tmp_path_factory)
    failures = check_types(
        item.model,
        item.module,
        item.reference,
        list(item.model.types),
        1,
        item.x_file.read_text(),
        Limits(values=80),
        Totals(),
    )
    assert not failures, "\n\n".join(f.describe() for f in failures)


def test_generated_modules_pass_mypy_strict(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    files = [
        Path(_load(loaded, name, tmp_path_factory).module.__file__ or "")
        for name in FILES
    ]
    # One mypy run for all of them: its start-up dominates.
    problems = mypy_problems(files, tmp_path_factory.mktemp("mypy"))
    assert problems is None, problems


def _agree(reference: Reference, codec: Any, name: str, value: Any) -> bytes:
    return check_value(reference, codec, name, value)


def _m(loaded: dict[str, Loaded], name: str, tmp: pytest.TempPathFactory) -> tuple[ModuleType, Loaded]:
    item = _load(loaded, name, tmp)
    return item.module, item


def test_d6_types_named_like_builtins_do_not_shadow_them(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    m, item = _m(loaded, "fuzz_builtin_names.x", tmp_path_factory)
    # The Python names take a trailing underscore; XDR_TYPES keeps the .x names.
    assert m.list_ and m.bytearray_ and m.set_
    assert get_origin(m.len_) is list and get_args(m.len_) == (m.list_,)
    value = m.set_(1, m.bytearray_([m.list_(5), m.list_(-1)], "s"))
    data = _agree(item.reference, item.codec("set"), "set", value)
    assert data.hex() == "00000001" "00000002" "00000005" "ffffffff" "00000001" "73000000"
    assert m.XDR_TYPES["set"].decode(data) == value


def test_d7_fields_named_like_types_keep_annotations_meaningful(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    m, item = _m(loaded, "fuzz_shadowed_annotations.x", tmp_path_factory)
    # mypy sees the annotations through module-level aliases (the mypy test above);
    # at run time the classes behave as before.
    assert m._T_foo is str and m._T_list is list
    value = m.holder("a", "b", b"\x01", "c", ["d", "e"])
    _agree(item.reference, item.codec("holder"), "holder", value)
    chain = m.value(1, m.value(1, m.value(2)))
    _agree(item.reference, item.codec("value"), "value", chain)


def test_d8_d9_reserved_names_and_their_underscored_forms_stay_apart(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    m, item = _m(loaded, "fuzz_escaped_names.x", tmp_path_factory)
    keyed = m.keyed(1, 2, 3, 4)
    assert (keyed.self_, keyed.self__, keyed.from_, keyed.from__) == (1, 2, 3, 4)
    assert m.from_ is not m.from__
    _agree(item.reference, item.codec("from_"), "from_", m.from__(keyed))
    # An IntEnum cannot have a member called mro: the class spells it mro_.
    assert m.order.mro_ == m.mro == 1
    assert m.order.class__ == m.class__ == 3 and m.class_ == 2


def test_d10_types_named_like_generated_locals(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    m, item = _m(loaded, "fuzz_local_names.x", tmp_path_factory)
    value = m.x1(1, m.data_(m.e_(7), m.e_(8)))
    _agree(item.reference, item.codec("x1"), "x1", value)
    _agree(item.reference, item.codec("x1"), "x1", m.x1(2, m.e_(9)))


def test_d11_u_char_and_u_short_have_the_c_range(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from xdrgen.runtime.errors import XdrDecodeError, XdrEncodeError

    m, item = _m(loaded, "fuzz_narrow_builtins.x", tmp_path_factory)
    codec = item.codec("narrow")
    _agree(item.reference, codec, "narrow", m.narrow(255, 65535, [0, 255], [1, 2, 3]))
    with pytest.raises(XdrEncodeError):
        codec.encode(m.narrow(256, 0, [0, 0], []))
    with pytest.raises(XdrEncodeError):
        item.codec("small").encode(-1)
    # rpcgen truncates 0x101 to 1 (docs/compatibility.md, difference 7); we refuse it.
    data = struct.pack(">IIIII", 0x101, 0, 0, 0, 0)
    theirs = item.reference.roundtrip("narrow", data)
    assert theirs.decoded and theirs.reencoded == struct.pack(">IIIII", 1, 0, 0, 0, 0)
    with pytest.raises(XdrDecodeError) as info:
        codec.decode(data)
    assert info.value.offset == 0


def test_d12_optional_data_of_optional_data_keeps_every_byte(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    m, item = _m(loaded, "fuzz_optional_optional.x", tmp_path_factory)
    codec = item.codec("maybe2")
    present_empty = struct.pack(">II", 1, 0)
    theirs = item.reference.roundtrip("maybe2", present_empty)
    assert theirs.reencoded == present_empty
    # A list of at most one item: [None] is "present, holding nothing".
    assert codec.decode(present_empty) == [None]
    assert codec.encode([None]) == present_empty
    assert codec.encode([]) == struct.pack(">I", 0)
    assert codec.encode([7]) == struct.pack(">III", 1, 1, 7)
    _agree(item.reference, item.codec("holder"), "holder", m.holder([None], 5))


def test_d14_a_wrong_next_node_is_reported_at_its_place_in_the_list(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from xdrgen.runtime.errors import XdrEncodeError

    m, item = _m(loaded, "fuzz_linked_list_wrong_next.x", tmp_path_factory)
    codec = item.codec("node")
    _agree(item.reference, codec, "node", m.node(7, 1, m.node(None, 2, None)))
    # The path names the wrong node, or a field of it (``next.v``), never an earlier one.
    for broken, place in (
        (m.node(None, 1, object()), "next"),
        (m.node(None, 1, m.node(None, 2, 5)), "next.next"),
        (object(), ""),
    ):
        with pytest.raises(XdrEncodeError) as info:
            codec.encode(broken)
        path = info.value.path
        assert path.startswith(place), (path, place)
        assert path.removeprefix(place).removeprefix(".") in ("", "v"), (path, place)
        assert info.value.type_name == "node"


def test_d15_optional_field_of_a_wrong_inlined_value_is_located(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from xdrgen.runtime.errors import XdrEncodeError

    m, item = _m(loaded, "fuzz_inlined_optional_wrong_holder.x", tmp_path_factory)
    codec = item.codec("outer")
    _agree(item.reference, codec, "outer", m.outer(b"abc", m.inner(5), [m.inner(None)]))
    for broken, place in (
        (m.outer(b"abc", None, []), "m1"),
        (m.outer(b"abc", m.inner(1), [m.inner(2), 5]), "items[1]"),
    ):
        with pytest.raises(XdrEncodeError) as info:
            codec.encode(broken)
        assert info.value.path.startswith(place), (info.value.path, place)


def test_d16_a_value_that_holds_itself_is_reported_where_it_is_wrong(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from xdrgen.runtime.errors import XdrEncodeError

    m, item = _m(loaded, "fuzz_cyclic_value.x", tmp_path_factory)
    codec = item.codec("holder")
    value = m.holder(m.flag(True, b"x" * 9), m.flag(False, b"y" * 9), b"abcd", None, 5)
    _agree(item.reference, codec, "holder", value)
    value.m0 = value
    # The error message shows the wrong value: its repr must end (``...`` for the cycle).
    assert repr(value).startswith("holder(m0=..., m1=flag(")
    with pytest.raises(XdrEncodeError) as info:
        codec.encode(value)
    assert info.value.path.startswith("m0"), str(info.value)


def test_d17_aliases_naming_later_or_renamed_types_import(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    m, item = _m(loaded, "fuzz_forward_aliases.x", tmp_path_factory)
    # Forward references are strings; so is an alias of one (``arr | None``).
    assert m.class_ptr == "class_ | None" and m.maybe_arr == "arr | None"
    value = m.list_([1, 2], None, m.class_(3), [m.later(4)])
    _agree(item.reference, item.codec("list"), "list", value)
    _agree(item.reference, item.codec("list"), "list", m.list_([], [7], None, None))


def test_d18_a_wrong_value_in_a_fused_union_is_reported_at_the_union(
    loaded: dict[str, Loaded], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from xdrgen.runtime.errors import XdrEncodeError

    m, item = _m(loaded, "fuzz_run_handler_holders.x", tmp_path_factory)
    codec = item.codec("s2")
    value = m.s2(b"a", 1.5, m.u1(7, -3), 4, m.u1(0x80000000, [1, 2]))
    _agree(item.reference, codec, "s2", value)
    # The struct itself where the union belongs: its m0 (bytes) is read as the
    # discriminant, the default arm's value is missing.  The error handler must
    # not fail again while explaining it.
    value.pr = value
    with pytest.raises(XdrEncodeError) as info:
        codec.encode(value)
    assert info.value.path.startswith("pr"), str(info.value)
    value.pr = m.u1(7, "x")
    with pytest.raises(XdrEncodeError) as info:
        codec.encode(value)
    assert info.value.path == "pr.one", str(info.value)
