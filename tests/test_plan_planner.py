"""The planner on small models: each fusion and inlining decision, as data.

docs/marshalling-plan.md describes the node types these tests build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xdrgen.frontend import load
from xdrgen.generator.plan import plan_module, to_data
from xdrgen.generator.plan import planner as planner_module
from xdrgen.generator.plan.nodes import (
    Alone,
    Arm,
    Array,
    Bytes,
    Call,
    Field,
    Group,
    ListPlan,
    Optional,
    Run,
    Scalar,
    Segment,
    Struct,
    StructPlan,
    TypeName,
    TypePlan,
    Union,
    UnionPlan,
    ValuePlan,
    Void,
)


def plans(tmp_path: Path, text: str) -> dict[str, TypePlan]:
    source = tmp_path / "small.x"
    source.write_text(text)
    return plan_module(load(source))


def body(plan: TypePlan) -> tuple[Segment, ...]:
    assert isinstance(plan, (StructPlan, ListPlan))
    return plan.body


INT = Scalar("int", 4)


def ints(*names: str) -> tuple[Field, ...]:
    return tuple(Field(n, n, INT) for n in names)


def test_fixed_fields_are_one_run_split_after_twelve(tmp_path: Path) -> None:
    names = [f"f{i}" for i in range(13)]
    got = plans(tmp_path, "struct s {" + " ".join(f"int {n};" for n in names) + "};")
    assert body(got["s"]) == (Run(ints(*names[:12])), Run(ints(names[12])))
    # Thirteen fields are two runs: no whole-value shortcut.
    assert got["s"].shortcuts == ()  # type: ignore[union-attr]


def test_a_struct_that_is_one_run_gets_both_shortcuts(tmp_path: Path) -> None:
    got = plans(tmp_path, "struct s { int a; hyper b; };")
    plan = got["s"]
    assert isinstance(plan, StructPlan)
    assert plan.body == (
        Run((Field("a", "a", INT), Field("b", "b", Scalar("hyper", 8)))),
    )
    assert plan.shortcuts == ("encode", "decode")


def test_scalar_kinds_sizes_and_checks(tmp_path: Path) -> None:
    got = plans(
        tmp_path,
        """
        enum color { RED = 1 };
        struct s {
            char c; unsigned char uc; short sh; unsigned short us;
            unsigned int u; bool b; float f; double d; unsigned hyper uh;
            color e; opaque fx[5]; quadruple q;
        };
        """,
    )
    run = body(got["s"])[0]
    assert isinstance(run, Run)
    assert [(f.node.kind, f.node.size) for f in run.fields] == [  # type: ignore[union-attr]
        ("char", 4),
        ("uchar", 4),
        ("short", 4),
        ("ushort", 4),
        ("uint", 4),
        ("bool", 4),
        ("float", 4),
        ("double", 8),
        ("uhyper", 8),
        ("enum", 4),
        ("fixed_opaque", 8),
        ("quadruple", 16),
    ]
    assert run.fields[9].node == Scalar("enum", 4, enum=TypeName("color"))
    assert run.fields[10].node == Scalar("fixed_opaque", 8, length=5)
    assert got["color"] == ValuePlan(
        TypeName("color"), Scalar("enum", 4, TypeName("color"))
    )


def test_string_then_fixed_fields_and_a_union_is_one_group(tmp_path: Path) -> None:
    got = plans(
        tmp_path,
        """
        union u switch (int d) { case 1: int i; default: void; };
        struct s { string name<10>; int a; u tail; string rest<>; };
        """,
    )
    group, rest = body(got["s"])
    assert isinstance(group, Group)
    assert group.head == Field("name", "name", Bytes(text=True, bound=10))
    assert group.tail == ints("a")
    assert group.union is not None and isinstance(group.union.node, Union)
    assert group.encode_head_apart is False
    assert rest == Alone(Field("rest", "rest", Bytes(text=True, bound=None)))


def test_an_opaque_group_is_written_apart_when_encoding(tmp_path: Path) -> None:
    got = plans(tmp_path, "struct s { opaque data<>; unsigned int n; };")
    (group,) = body(got["s"])
    assert isinstance(group, Group)
    assert group.head.node == Bytes(text=False, bound=None)
    # Encoding takes any bytes-like object, which a struct format cannot.
    assert group.encode_head_apart is True


def test_a_group_takes_at_most_eight_fixed_fields(tmp_path: Path) -> None:
    names = [f"f{i}" for i in range(10)]
    fields = " ".join(f"int {n};" for n in names)
    got = plans(
        tmp_path,
        "union u switch (int d) { case 1: int i; };"
        f"struct s {{ string s<>; {fields} u x; }};",
    )
    group, run = body(got["s"])
    assert isinstance(group, Group) and group.tail == ints(*names[:8])
    assert group.union is None
    # The fields beyond the group form a run that carries the union.
    assert isinstance(run, Run) and run.fields == ints(*names[8:])
    assert run.union is not None and run.union.name == "x"


def test_a_union_after_a_struct_or_array_is_not_grouped(tmp_path: Path) -> None:
    """Issue 10 defect 1: only a string or opaque heads a group."""
    got = plans(
        tmp_path, (Path(__file__).parent / "xfiles" / "union_after_named.x").read_text()
    )
    first, second = body(got["lookup_ok"])
    assert isinstance(first, Alone) and isinstance(first.field.node, Struct)
    assert isinstance(second, Run) and second.fields == ()
    assert second.union is not None and second.union.name == "obj_attributes"
    first, second = body(got["holder"])
    assert isinstance(first, Alone) and isinstance(first.field.node, Array)
    assert isinstance(second, Run) and second.fields == () and second.union is not None


def test_inlining_stops_two_levels_deep_and_at_recursion(tmp_path: Path) -> None:
    got = plans(
        tmp_path,
        """
        struct c { int x; };
        struct b { c inner; };
        struct a { b middle; };
        struct top { a outer; };
        struct node { int v; node *next; };
        struct tree { tree kids<>; int v; };
        """,
    )
    (outer,) = body(got["top"])
    assert isinstance(outer, Alone)
    a = outer.field.node
    assert isinstance(a, Struct) and a.type == TypeName("a")
    (middle,) = a.body
    assert isinstance(middle, Alone)
    b = middle.field.node
    assert isinstance(b, Struct)
    (inner,) = b.body
    assert isinstance(inner, Alone) and inner.field.node == Call(TypeName("c"))
    # A struct whose last field points to itself is a list: loops, not calls.
    node = got["node"]
    assert isinstance(node, ListPlan)
    assert node.body == (Run(ints("v")),)
    assert node.link == Field("next", "next", Optional(Call(TypeName("node"))))
    # Other recursion is never inlined.
    kids, _ = body(got["tree"])
    assert isinstance(kids, Alone) and isinstance(kids.field.node, Array)
    assert kids.field.node.element == Call(TypeName("tree"))


def test_a_struct_with_more_than_eight_fields_is_called(tmp_path: Path) -> None:
    many = " ".join(f"int f{i};" for i in range(9))
    got = plans(tmp_path, f"struct big {{ {many} }}; struct s {{ big b; }};")
    assert body(got["s"]) == (Alone(Field("b", "b", Call(TypeName("big")))),)


def test_arrays(tmp_path: Path) -> None:
    got = plans(
        tmp_path,
        """
        struct named { string name<>; int id; };
        struct mixed { string name<>; named inner; };
        struct s {
            int nums<>; hyper fixed[3]; char chars<4>; float fs<>;
            named list<2>; named pair[2]; mixed others<>;
        };
        """,
    )
    segments = body(got["s"])
    arrays = [seg.field.node for seg in segments if isinstance(seg, Alone)]
    assert len(arrays) == len(segments)
    nums, fixed, chars, floats, named, pair, others = arrays
    assert nums == Array(INT, True, None, 4, "i", False, False)
    assert fixed == Array(Scalar("hyper", 8), False, 3, 8, "q", False, False)
    # Range-checked and float32 elements go one by one.
    assert isinstance(chars, Array) and chars.bulk is None and chars.length == 4
    assert isinstance(floats, Array) and floats.bulk is None
    # Inlined structs: blank elements made at once, the next length word read ahead.
    assert isinstance(named, Array) and named.decode_prebuilt and named.decode_lookahead
    assert named.min_element_size == 8
    # A fixed array has nothing to check the count against first: elements one by one.
    assert isinstance(pair, Array) and not pair.decode_prebuilt
    # Not one group per element: prebuilt, no lookahead.
    assert isinstance(others, Array) and others.decode_prebuilt
    assert not others.decode_lookahead


def test_lookahead_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planner_module, "ARRAY_LOOKAHEAD", False)
    got = plans(tmp_path, "struct n { string s<>; int i; }; struct s { n items<>; };")
    (items,) = body(got["s"])
    assert isinstance(items, Alone) and isinstance(items.field.node, Array)
    assert items.field.node.decode_prebuilt and not items.field.node.decode_lookahead


def test_union_arms_and_what_the_encoder_packs_with_the_discriminant(
    tmp_path: Path,
) -> None:
    got = plans(
        tmp_path,
        """
        enum kind { A = 1, B = 2, C = 3 };
        union u switch (kind k) {
            case A: case B: int n;
            case C: string s<>;
            default: hyper h;
        };
        union v switch (bool on) { case TRUE: void; };
        struct holder { int x; u value; };
        """,
    )
    plan = got["u"]
    assert isinstance(plan, UnionPlan)
    union = plan.union
    assert union.discriminant == Field("k", "k", Scalar("enum", 4, TypeName("kind")))
    assert union.arms == (
        Arm((1, 2), Field("n", "value", INT), True),
        Arm((3,), Field("s", "value", Bytes(True, None)), False),
    )
    # A type's own union function checks a default discriminant in a run of its own.
    assert union.default == Arm((), Field("h", "value", Scalar("hyper", 8)), False)
    v = got["v"]
    assert isinstance(v, UnionPlan) and v.union.default is None
    assert v.union.arms == (Arm((1,), Field("", "value", Void()), False),)
    # Fused after a run: the run checks the discriminant, so the default arm's
    # value packs with it too.
    (run,) = body(got["holder"])
    assert isinstance(run, Run) and run.fields == ints("x") and run.union is not None
    fused = run.union.node
    assert isinstance(fused, Union) and fused.default is not None
    assert fused.default.encode_with_discriminant is True
    assert run.union.attr == "value"


def test_typedefs_are_seen_through(tmp_path: Path) -> None:
    got = plans(
        tmp_path,
        """
        typedef string name_t<16>;
        typedef opaque blob<>;
        typedef name_t names<>;
        struct s { names n; blob b; };
        """,
    )
    assert got["name_t"] == ValuePlan(TypeName("name_t"), Bytes(True, 16))
    # A lone variable opaque gets a one-copy encode (decode returns it already).
    assert got["blob"] == ValuePlan(TypeName("blob"), Bytes(False, None), ("encode",))
    n, b = body(got["s"])
    assert n == Alone(
        Field("n", "n", Array(Bytes(True, 16), True, None, 4, None, False, False))
    )
    assert b == Alone(Field("b", "b", Bytes(False, None)))


def test_keyword_names_use_python_attributes(tmp_path: Path) -> None:
    got = plans(
        tmp_path,
        "union u switch (int value) { case 1: int from; };"
        "struct s { int from; u type; };",
    )
    (run,) = body(got["s"])
    assert isinstance(run, Run)
    assert run.fields == (Field("from", "from_", INT),)
    assert run.union is not None and run.union.attr == "type"
    union = run.union.node
    assert isinstance(union, Union)
    assert union.discriminant.attr == "value_" and union.discriminant.name == "value"


def test_to_data_is_plain_and_complete(tmp_path: Path) -> None:
    got = plans(
        tmp_path,
        """
        enum e { X = 0 };
        union u switch (e d) { case X: string s<>; };
        struct s { string a<>; int b; u c; s2 *next; opaque o[3]; };
        struct s2 { int z; };
        """,
    )
    data: dict[str, Any] = {name: to_data(plan) for name, plan in got.items()}
    # JSON has no tuples: a round trip through it keeps everything but tuple-ness.
    assert json.loads(json.dumps(data))["s"]["class"] == "StructPlan"
    group = data["s"]["body"][0]
    assert group["class"] == "Group"
    assert group["head"] == {
        "class": "Field",
        "name": "a",
        "attr": "a",
        "node": {"class": "Bytes", "text": True, "bound": None},
    }
    assert group["tail"] == (
        {"class": "Field", "name": "b", "attr": "b", "node": to_data(INT)},
    )
    union = group["union"]["node"]
    assert union["discriminant"]["node"] == {
        "class": "Scalar",
        "kind": "enum",
        "size": 4,
        "enum": "e",
        "length": 0,
    }
    optional = data["s"]["body"][1]["field"]["node"]
    assert optional["element"]["class"] == "Struct"
    assert optional["element"]["type"] == "s2"

    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, tuple):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, (bool, int, str))

    assert all(plain(v) for v in data.values())
