"""One type's marshalling functions from its plan.

``_enc_<T>(buf, v)`` and ``_dec_<T>(data, off) -> (value, off)`` for every
type, plus the whole-value shortcuts the plan asks for: ``_encode_<T>(v)`` and
``_decode_<T>(data)`` of a struct that is one fused run (``Struct.pack`` /
``Struct.unpack``, which also checks the size), or one variable opaque (one
copy each way).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdrgen.generator.layout import bracketed, string_literal
from xdrgen.generator.marshal.body import Item, Path
from xdrgen.generator.marshal.context import ModuleContext, fixed
from xdrgen.generator.marshal.decode import Decoder
from xdrgen.generator.marshal.encode import Encoder
from xdrgen.generator.names import py_name
from xdrgen.generator.plan.nodes import (
    Alone,
    Bytes,
    Field,
    ListPlan,
    Run,
    Scalar,
    StructPlan,
    TypePlan,
    UnionPlan,
    ValuePlan,
)


@dataclass
class TypeFunctions:
    """The generated functions of one type."""

    #: Each function's source text.
    sources: list[str] = field(default_factory=list)
    #: Names of the whole-value shortcuts ("" when there is none).
    encode: str = ""
    decode: str = ""
    #: The plan parts each direction's ``_enc_``/``_dec_`` function used, in order.
    encoded: list[object] = field(default_factory=list)
    decoded: list[object] = field(default_factory=list)


def type_functions(
    ctx: ModuleContext,
    plan: TypePlan,
    *,
    names: tuple[str, str] | None = None,
    pytype: str | None = None,
) -> TypeFunctions:
    """The functions of ``plan``'s type: ``_enc_<T>`` and ``_dec_<T>`` (or
    ``names``) for values annotated ``pytype`` (default: the type's class)."""
    name = py_name(plan.type.name)
    enc_name, dec_name = names or (f"_enc_{name}", f"_dec_{name}")
    pytype = pytype or name
    # Bodies sit one level in: inside the catch-all ``try`` (see _net).
    enc = Encoder(ctx, plan.type.name, indent=8)
    dec = Decoder(ctx, plan.type.name, indent=8)
    if isinstance(plan, ListPlan):
        enc.linked_list(plan)
        dec.linked_list(plan)
    elif isinstance(plan, StructPlan):
        enc.body(plan.body, "v", Path())
        dec.emit(f"o = _new({name})")
        dec.body(plan.body, "o", Path())
        dec.emit("return o, off")
    elif isinstance(plan, UnionPlan):
        enc.take(plan.union)
        enc.union_body(plan.union, "v", Path())
        dec.take(plan.union)
        dec.union_body(plan.union, "r", Path())
        dec.emit("return r, off")
    else:
        enc.value(plan.node, "v", Path())
        dec.value(plan.node, "r", Path())
        dec.emit("return r, off")
    if not enc.lines:
        enc.emit("pass")
    out = TypeFunctions(encoded=enc.consumed, decoded=dec.consumed)
    out.sources.append(
        "\n".join(
            [
                *_def(enc_name, ["buf: bytearray", f"v: {pytype}"], "None"),
                *_net(enc.lines, _enc_net(plan.type.name)),
            ]
        )
    )
    out.sources.append(
        "\n".join(
            [
                *_def(dec_name, ["data: _Buffer", "off: int"], f"tuple[{pytype}, int]"),
                *_net(dec.lines, _dec_net(plan.type.name)),
            ]
        )
    )
    shortcuts(ctx, plan, out)
    return out


def shortcuts(ctx: ModuleContext, plan: TypePlan, out: TypeFunctions) -> None:
    """Add the whole-value functions ``plan`` asks for to ``out``."""
    if isinstance(plan, StructPlan) and plan.shortcuts:
        only = plan.body[0]
        if isinstance(only, Run):
            whole_run(ctx, plan, only, out)
            return
        assert isinstance(only, Alone) and isinstance(only.field.node, Bytes)
        f = only.field
        lone_opaque_encode(ctx, plan, only.field.node, f"v.{f.attr}", f.name, out)
        lone_opaque_decode(ctx, plan, only.field, out)
    elif isinstance(plan, ValuePlan) and plan.shortcuts:
        assert plan.shortcuts == ("encode",) and isinstance(plan.node, Bytes)
        lone_opaque_encode(ctx, plan, plan.node, "v", "", out)


def whole_run(
    ctx: ModuleContext, plan: StructPlan, run: Run, out: TypeFunctions
) -> None:
    """``encode``/``decode`` of a struct that is one fused run."""
    name = py_name(plan.type.name)
    items: list[Item] = []
    for f in run.fields:
        assert isinstance(f.node, Scalar)
        items.append((fixed(ctx, f.node), f"v.{f.attr}", Path((f.name,))))
    enc = Encoder(ctx, plan.type.name)
    enc.encode_run(items, returning=True)
    dec = Decoder(ctx, plan.type.name)
    size = sum(fx.size for fx, _, _ in items)
    dec.emit(f"o = _new({name})")
    # ``unpack`` insists on exactly ``size`` bytes: no separate length test.
    dec.decode_whole([(fx, "o." + x.partition(".")[2], p) for fx, x, p in items], size)
    dec.emit("return o")
    out.encode, out.decode = f"_encode_{name}", f"_decode_{name}"
    out.sources.append(
        "\n".join([*_def(out.encode, [f"v: {name}"], "bytes"), *enc.lines])
    )
    out.sources.append(
        "\n".join([*_def(out.decode, ["data: _Buffer"], name), *dec.lines])
    )


def lone_opaque_encode(
    ctx: ModuleContext,
    plan: StructPlan | ValuePlan,
    node: Bytes,
    x: str,
    path: str,
    out: TypeFunctions,
) -> None:
    """``encode`` of a lone variable opaque: one copy via ``bytes.join``."""
    name = py_name(plan.type.name)
    body = Encoder(ctx, plan.type.name)
    where = Path((path,) if path else ())
    with body.guarded(body.efail(where)):
        body.emit(f"b = {x}")
        body.emit("n = len(b)")
    body.bound_check("_too_long", where, "opaque", "n", node.bound)
    with body.guarded(body.efail(where)):
        body.emit('return b"".join((_U32.pack(n), b, _PAD[n & 3]))')
    out.encode = f"_encode_{name}"
    out.sources.append(
        "\n".join([*_def(out.encode, [f"v: {name}"], "bytes"), *body.lines])
    )


def lone_opaque_decode(
    ctx: ModuleContext, plan: StructPlan, f: Field, out: TypeFunctions
) -> None:
    """``decode`` of a struct that is one variable opaque: one copy, no wrapper."""
    assert isinstance(f.node, Bytes)
    bound = f.node.bound
    name = py_name(plan.type.name)
    body = Decoder(ctx, plan.type.name)
    t, path = body.type_lit, string_literal(f.name)
    body.emit(f"o = _new({name})")
    with body.guarded([("raise _dfail(", [t, path, "e", "data", "0"], ") from None")]):
        body.emit("(n,) = _U32.unpack_from(data, 0)")
    body.bound_check("_decl_too_long", Path((f.name,)), "opaque", "n", bound, "0")
    body.emit("q = (n + 7) & -4")
    with body.block("if q != len(data):"):
        body.emit_call("raise _bytes_size(", [t, path, '"opaque"', "n", "data"], ")")
    body.emit(f"o.{f.attr} = bytes(data[4 : 4 + n])")
    with body.block("if n & 3 and data[4 + n : q] != _PAD[n & 3]:"):
        body.emit_call("raise _bad_pad(", [t, path, "4 + n"], ")")
    body.emit("return o")
    out.decode = f"_decode_{name}"
    out.sources.append(
        "\n".join([*_def(out.decode, ["data: _Buffer"], name), *body.lines])
    )


def _enc_net(type_name: str) -> list[str]:
    return [
        "    except _XdrError:",
        "        raise",
        "    except Exception as e:",
        *bracketed(
            8, "raise _efail(", [string_literal(type_name), '""', "e"], ") from None"
        ),
    ]


def _dec_net(type_name: str) -> list[str]:
    args = [string_literal(type_name), '""', "e", "data", "off"]
    return [
        "    except _XdrError:",
        "        raise",
        "    except Exception as e:",
        *bracketed(8, "raise _dfail(", args, ") from None"),
    ]


def _net(body: list[str], handler: list[str]) -> list[str]:
    """``body`` (indented for it) inside a catch-all ``try``: whatever a precise
    handler did not already explain (a wrong Python type somewhere, Python's
    recursion limit on a cyclic value) still leaves as an XdrError.  Free on
    success in CPython 3.11."""
    return ["    try:", *body, *handler]


def _def(name: str, params: list[str], returns: str) -> list[str]:
    return bracketed(0, f"def {name}(", params, f") -> {returns}:", is_def=True)
