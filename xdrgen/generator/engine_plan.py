"""Marshalling plans as the compiled engine reads them: one short string per type.

The engine (``xdrgen.runtime._engine``, docs/compiled-engine.md) runs the plans of
:mod:`xdrgen.generator.plan`, taken as plain data (:func:`to_data`) and written
in a compact prefix notation, one string literal per type, so that a generated
module carries them at the cost of one constant each.  The engine gains nothing
from the Python emitters' fusing, so runs and groups are flattened into their
fields and an inlined struct or union becomes a call to its own type's program.

A type::

    <.x name> <Python class or -> <kind> ...
      T <n> (<attr> <node>){n}                       struct
      L <n> (<attr> <node>){n} <link attr>           linked list (last field T *)
      U <disc attr> <disc node> <n> (<k> <label>{k} <node>){n} (<node> | -)
                                                     union, then its default arm
      V <node>                                       enum or typedef

A node::

    i I c C h H q Q f d b x   int uint char uchar short ushort hyper uhyper
                              float double bool quadruple
    e <enum class>            enum
    o <length>                fixed opaque
    v                         void
    s <bound>, O <bound>      string, variable opaque (bound -1: none)
    p <node>                  optional
    a <count> <least> <node>  fixed array; least: fewest bytes per element
    A <bound> <least> <node>  variable array
    k <.x name>               another type's program

Imported names are written ``module.name``.
"""

from __future__ import annotations

from collections.abc import Mapping

from xdrgen.generator.names import py_name
from xdrgen.generator.plan import TypePlan, to_data
from xdrgen.generator.plan.nodes import PlanData

_SCALARS = {
    "int": "i",
    "uint": "I",
    "char": "c",
    "uchar": "C",
    "short": "h",
    "ushort": "H",
    "hyper": "q",
    "uhyper": "Q",
    "float": "f",
    "double": "d",
    "bool": "b",
    "quadruple": "x",
}


def _dict(data: PlanData) -> Mapping[str, PlanData]:
    assert isinstance(data, dict), data
    return data


def _items(data: PlanData) -> tuple[PlanData, ...]:
    assert isinstance(data, tuple), data
    return data


def _int(data: PlanData) -> int:
    assert isinstance(data, int), data
    return data


def _text(data: PlanData) -> str:
    assert isinstance(data, str), data
    return data


def _class_name(type_name: str) -> str:
    """The Python class of a plan's ``TypeName`` (``module.name`` when imported)."""
    module, dot, name = type_name.rpartition(".")
    return f"{module}{dot}{py_name(name)}"


def _node(data: PlanData, out: list[str]) -> None:
    node = _dict(data)
    cls = node["class"]
    if cls == "Scalar":
        kind = node["kind"]
        if kind == "enum":
            out += ["e", _class_name(_text(node["enum"]))]
        elif kind == "fixed_opaque":
            out += ["o", str(_int(node["length"]))]
        else:
            out.append(_SCALARS[_text(kind)])
    elif cls == "Void":
        out.append("v")
    elif cls == "Bytes":
        bound = node["bound"]
        out += ["s" if node["text"] else "O", str(-1 if bound is None else bound)]
    elif cls == "Optional":
        out.append("p")
        _node(node["element"], out)
    elif cls == "Array":
        length = node["length"]
        least = str(_int(node["min_element_size"]))
        if node["variable"]:
            out += ["A", str(-1 if length is None else _int(length)), least]
        else:
            out += ["a", str(_int(length)), least]
        _node(node["element"], out)
    elif cls in ("Call", "Struct", "Union"):
        out += ["k", _text(node["type"])]
    else:  # pragma: no cover - a node type the engine format does not know
        raise AssertionError(f"plan node {cls} has no engine form")


def _fields(body: PlanData) -> list[Mapping[str, PlanData]]:
    """A struct body's fields in wire order (runs and groups flattened)."""
    fields: list[Mapping[str, PlanData]] = []
    for segment in _items(body):
        seg = _dict(segment)
        kind = seg["class"]
        if kind == "Alone":
            fields.append(_dict(seg["field"]))
            continue
        if kind == "Group":
            fields.append(_dict(seg["head"]))
            fields.extend(_dict(f) for f in _items(seg["tail"]))
        else:
            fields.extend(_dict(f) for f in _items(seg["fields"]))
        if seg["union"] is not None:
            fields.append(_dict(seg["union"]))
    return fields


def _struct_fields(body: PlanData, out: list[str]) -> None:
    fields = _fields(body)
    out.append(str(len(fields)))
    for f in fields:
        out.append(_text(f["attr"]))
        _node(f["node"], out)


def engine_plan(plan: TypePlan, name: str | None = None, cls: str | None = None) -> str:
    """``plan`` in the engine's notation; ``name`` overrides the type's name (a
    procedure parameter's codec), ``cls`` gives the Python class."""
    data = _dict(to_data(plan))
    type_name = name if name is not None else _text(data["type"])
    kind = data["class"]
    if cls is None:
        cls = py_name(type_name) if kind != "ValuePlan" else "-"
    out = [type_name, cls]
    if kind == "StructPlan":
        out.append("T")
        _struct_fields(data["body"], out)
    elif kind == "ListPlan":
        out.append("L")
        _struct_fields(data["body"], out)
        link = _dict(data["link"])
        out.append(_text(link["attr"]))
    elif kind == "UnionPlan":
        union = _dict(data["union"])
        disc = _dict(union["discriminant"])
        out += ["U", _text(disc["attr"])]
        _node(disc["node"], out)
        arms = _items(union["arms"])
        out.append(str(len(arms)))
        for arm_data in arms:
            arm = _dict(arm_data)
            labels = _items(arm["labels"])
            out.append(str(len(labels)))
            out.extend(str(_int(label)) for label in labels)
            _node(_dict(arm["field"])["node"], out)
        default = union["default"]
        if default is None:
            out.append("-")
        else:
            _node(_dict(_dict(default)["field"])["node"], out)
    else:
        out.append("V")
        _node(data["node"], out)
    return " ".join(out)
