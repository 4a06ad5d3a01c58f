"""What the Python emitters share: module-level names, and plan nodes as Python.

:class:`ModuleContext` hands out the module-level names the marshallers use
(struct formats, enum maps, run infos, length-format tables) in the order the
emitters first need them.  :func:`fixed` gives the ``struct`` codes, checks and
conversions of a plan :class:`~xdrgen.generator.plan.nodes.Scalar`;
:func:`py_type` the annotation of a node's values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdrgen.generator.names import py_name
from xdrgen.generator.plan.nodes import (
    Array,
    Bytes,
    Call,
    Node,
    Optional,
    Scalar,
    Struct,
    TypeName,
    Union,
    Void,
)


@dataclass(frozen=True)
class Fixed:
    """A fixed-size item as packed by ``struct``, with its checks."""

    enc_fmt: str
    dec_fmt: str
    size: int
    check: str
    #: Expression packed for value x ("{x}" is replaced).
    enc_expr: str = "{x}"
    #: Guard statements raising _Invalid before packing.
    enc_guard: str | None = None
    #: Decode conversion: None, ("map", name), ("range", lo, hi), ("pad", start,
    #: count) or ("f32",).
    dec_conv: tuple[object, ...] | None = None
    #: A float32: packing goes through a C double, which quiets signalling NaNs,
    #: so NaNs take a slow path that keeps their exact bits.
    float32: bool = False


@dataclass
class ModuleContext:
    """Module-level names the marshallers share (formats, enum maps, run infos)."""

    recursive: set[str]
    structs: dict[str, str] = field(default_factory=dict)  # format -> name
    enum_maps: dict[str, str] = field(default_factory=dict)  # enum key -> map name
    enum_checks: dict[str, str] = field(default_factory=dict)
    enum_sources: dict[str, str] = field(default_factory=dict)  # map name -> class expr
    #: (name, paths, checks, attribute names, holders): see ``run_info``.
    run_infos: list[tuple[str, list[str], list[str], list[str] | None, bool]] = field(
        default_factory=list
    )
    #: (fixed tail format, decode?) -> name of its LengthFormats.
    groups: dict[tuple[str, bool], str] = field(default_factory=dict)
    #: Types of other modules (``--import``) whose codecs this module calls: name -> alias.
    imported_codecs: dict[str, str] = field(default_factory=dict)
    #: Module-level Python names of the .x's definitions: temporaries avoid them,
    #: or a type named ``x1`` would be hidden inside a function that uses ``x1``.
    module_names: frozenset[str] = frozenset()

    def length_formats(self, tail: str, *, decode: bool) -> str:
        """Name of the module's :class:`LengthFormats` for ``tail`` (one per tail)."""
        key = (tail, decode)
        if key not in self.groups:
            self.groups[key] = f"_L{'D' if decode else 'E'}{len(self.groups)}"
        return self.groups[key]

    def struct(self, fmt: str) -> str:
        fmt = ">" + fmt
        if fmt not in self.structs:
            self.structs[fmt] = f"_S{len(self.structs)}"
        return self.structs[fmt]

    def cls(self, named: TypeName) -> str:
        name = py_name(named.name)
        if named.module is not None:
            return f"_imp_{named.module}.{name}"
        return name

    def enc_fn(self, named: TypeName) -> str:
        if named.module is not None:
            self.imported_codecs[named.name] = f"_imp_{named.module}"
        return f"_enc_{py_name(named.name)}"

    def dec_fn(self, named: TypeName) -> str:
        if named.module is not None:
            self.imported_codecs[named.name] = f"_imp_{named.module}"
        return f"_dec_{py_name(named.name)}"

    def enum_map(self, named: TypeName) -> str:
        key = self.cls(named)
        if key not in self.enum_maps:
            name = f"_EM_{py_name(named.name)}"
            self.enum_maps[key] = name
            self.enum_sources[name] = key
            self.enum_checks[key] = f"_EC_{py_name(named.name)}"
        return self.enum_maps[key]

    def enum_check(self, named: TypeName) -> str:
        self.enum_map(named)
        return self.enum_checks[self.cls(named)]

    def run_info(
        self,
        paths: list[str],
        checks: list[str],
        names: list[str] | None,
        *,
        holders: bool = False,
    ) -> str:
        """A module-level ``RunInfo`` for a run's error handler.  ``names``: the
        attribute of each item on the object passed to the handler; ``holders``:
        the handler gets one holder per item instead (``""`` names an item that is
        its own holder), and reads each attribute itself (D18)."""
        name = f"_R{len(self.run_infos)}"
        self.run_infos.append((name, paths, checks, names, holders))
        return name


def _ranged(check: str, lo: int, hi: int) -> Fixed:
    return Fixed(
        "i",
        "i",
        4,
        check,
        enc_guard=f"if not {lo} <= {{x}} <= {hi}:",
        dec_conv=("range", lo, hi),
    )


_PLAIN = {
    "int": Fixed("i", "i", 4, "_ck.INT"),
    "char": _ranged("_ck.CHAR", -128, 127),
    "short": _ranged("_ck.SHORT", -(2**15), 2**15 - 1),
    "uint": Fixed("I", "I", 4, "_ck.UINT"),
    # Packed as a byte after zero padding; decoded as a word, then range-checked.
    "uchar": Fixed("3xB", "I", 4, "_ck.UCHAR", dec_conv=("range", 0, 255)),
    "ushort": Fixed("2xH", "I", 4, "_ck.USHORT", dec_conv=("range", 0, 65535)),
    "hyper": Fixed("q", "q", 8, "_ck.HYPER"),
    "uhyper": Fixed("Q", "Q", 8, "_ck.UHYPER"),
    "float": Fixed("f", "f", 4, "_ck.FLOAT", dec_conv=("f32",), float32=True),
    "double": Fixed("d", "d", 8, "_ck.DOUBLE"),
    # True/False or the ints 0/1, packed as themselves: struct refuses a float
    # such as 1.0 that the lookup would take for 1.
    "bool": Fixed(
        "I",
        "I",
        4,
        "_ck.BOOL",
        enc_guard="if {x} not in _BOOLE:",
        dec_conv=("map", "_BOOLD"),
    ),
    "quadruple": Fixed(
        "16s", "16s", 16, "_ck.QUADRUPLE", enc_guard="if len({x}) != 16:"
    ),
}


def fixed(ctx: ModuleContext, scalar: Scalar) -> Fixed:
    """How ``scalar`` packs (registers an enum's map and check on first use)."""
    if scalar.kind == "enum":
        assert scalar.enum is not None
        emap = ctx.enum_map(scalar.enum)
        return Fixed(
            "i",
            "i",
            4,
            ctx.enum_check(scalar.enum),
            # Membership first, then pack the value itself: struct rejects a float
            # such as 1.0 that a dict lookup would take for the member 1.
            enc_guard=f"if {{x}} not in {emap}:",
            dec_conv=("map", emap),
        )
    if scalar.kind == "fixed_opaque":
        n = scalar.length
        pad = scalar.size - n
        fmt = f"{n}s" + (f"{pad}x" if pad else "")
        return Fixed(
            fmt,
            fmt,
            scalar.size,
            f'_ck.OpaqueCheck("opaque[{n}]", {n})',
            enc_guard=f"if len({{x}}) != {n}:",
            dec_conv=("pad", n, pad) if pad else None,
        )
    return _PLAIN[scalar.kind]


def range_test(fx: Fixed, value: str) -> str:
    """The condition under which decoded ``value`` is out of ``fx``'s range."""
    assert fx.dec_conv is not None and fx.dec_conv[0] == "range"
    lo, hi = fx.dec_conv[1], fx.dec_conv[2]
    return f"{value} > {hi}" if lo == 0 else f"not {lo} <= {value} <= {hi}"


def arm_test(dv: str, labels: list[str]) -> str:
    """The condition selecting a union arm with case ``labels`` on discriminant ``dv``."""
    if len(labels) == 1:
        return f"{dv} == {labels[0]}"
    return f"{dv} in ({', '.join(labels)})"


_SCALAR_TYPES = {"bool": "bool", "float": "float", "double": "float"}


def py_type(ctx: ModuleContext, node: Node) -> str:
    """The annotation of the Python values of ``node``."""
    if isinstance(node, Scalar):
        if node.kind == "enum":
            assert node.enum is not None
            return ctx.cls(node.enum)
        if node.kind in ("quadruple", "fixed_opaque"):
            return "bytes"
        return _SCALAR_TYPES.get(node.kind, "int")
    if isinstance(node, (Struct, Union, Call)):
        return ctx.cls(node.type)
    if isinstance(node, Bytes):
        return "str" if node.text else "bytes"
    if isinstance(node, Void):
        return "None"
    if isinstance(node, Optional):
        return f"{py_type(ctx, node.element)} | None"
    assert isinstance(node, Array)
    return f"list[{py_type(ctx, node.element)}]"


def union_value_type(ctx: ModuleContext, union: Union) -> str:
    """The annotation of a union's ``value``: every arm's type, None last."""
    arms = union.arms + ((union.default,) if union.default is not None else ())
    types: list[str] = []
    for arm in arms:
        for part in top_level_parts(py_type(ctx, arm.field.node)):
            if part not in types:
                types.append(part)
    if "None" in types:
        types.remove("None")
        types.append("None")
    return " | ".join(types) if types else "None"


def top_level_parts(annotation: str) -> list[str]:
    """``list[int | None] | None`` -> ``["list[int | None]", "None"]`` (D20)."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(annotation):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth == 0 and annotation.startswith(" | ", index):
            parts.append(annotation[start:index])
            start = index + 3
    parts.append(annotation[start:])
    return parts
