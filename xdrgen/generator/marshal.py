"""Straight-line marshallers: Python source for encoding and decoding each type.

For every type the generator emits ``_enc_<T>(buf, v)`` (append to a bytearray)
and ``_dec_<T>(data, off) -> (value, off)``.  Bodies are specialised code, never a
walk over descriptors at run time:

- runs of consecutive fixed-size items become one precomputed ``struct.Struct``
  call (``buf += _S3.pack(...)`` / ``... = _S3.unpack_from(data, off)``);
- typedefs, and small non-recursive structs and unions, are inlined where used;
- lengths are checked against the declared maximum and the bytes remaining
  before anything is allocated;
- every failing spot sits in its own ``try`` (free in CPython 3.11 until it
  raises) whose handler builds the error with the field path and byte offset, so
  the success path does no bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from xdrgen.generator.layout import LINE, assignment, bracketed, string_literal
from xdrgen.generator.names import field_name, py_name, union_disc_name
from xdrgen.generator.views import View, min_size, view_of
from xdrgen.model import (
    Declaration,
    EnumDef,
    NamedType,
    Primitive,
    StructDef,
    UnionDef,
    UNBOUNDED,
)

#: Struct fields / union arms beyond which a type is called, not inlined.
INLINE_MAX_ITEMS = 8
#: How deep inlining nests inside one function.
INLINE_MAX_DEPTH = 2
#: Longest fused run (keeps unpack targets on one line).
RUN_MAX_ITEMS = 12
#: Most fixed items fused after a string (keeps the unpack targets on one line).
GROUP_MAX_ITEMS = 8
#: Arrays of "string then fixed fields" structs read each element's length word
#: with the element before it (see ``decode_groups_ahead``); tests turn it off to
#: compare with item-by-item decoding.
ARRAY_LOOKAHEAD = True

_BULK_FORMATS = {
    Primitive.INT: "i",
    Primitive.UINT: "I",
    Primitive.HYPER: "q",
    Primitive.UHYPER: "Q",
    Primitive.DOUBLE: "d",
}  # no float: its NaNs need the per-item path (see Fixed.float32)


@dataclass
class Path:
    """A field path as a Python expression: static text plus loop-index variables."""

    pieces: tuple[str | tuple[str], ...] = ()

    def attr(self, name: str) -> Path:
        if not self.pieces:
            return Path((name,))
        return Path(self.pieces + ("." + name,))

    def index(self, var: str) -> Path:
        return Path(self.pieces + ("[", (var,), "]"))

    def expr(self) -> str:
        if not any(isinstance(p, tuple) for p in self.pieces):
            return string_literal("".join(p for p in self.pieces if isinstance(p, str)))
        text = "".join(
            p if isinstance(p, str) else "{" + p[0] + "}" for p in self.pieces
        )
        return "f" + string_literal(text)


@dataclass
class Fixed:
    """A fixed-size item that can join a fused struct run."""

    enc_fmt: str
    dec_fmt: str
    size: int
    check: str
    #: Expression packed for value x ("{x}" is replaced).
    enc_expr: str = "{x}"
    #: Guard statements raising _Invalid before packing.
    enc_guard: str | None = None
    #: Decode conversion: None, ("map", name) or ("range", lo, hi) or ("pad", start, count).
    dec_conv: tuple[object, ...] | None = None
    #: A float32: packing goes through a C double, which quiets signalling NaNs,
    #: so NaNs take a slow path that keeps their exact bits.
    float32: bool = False


@dataclass
class ModuleContext:
    """Module-level names the marshallers share (formats, enum maps, run infos)."""

    recursive: set[str]
    imported_modules: dict[str, str] = field(default_factory=dict)  # source -> alias
    structs: dict[str, str] = field(default_factory=dict)  # format -> name
    enum_maps: dict[str, str] = field(default_factory=dict)  # enum key -> map name
    enum_checks: dict[str, str] = field(default_factory=dict)
    enum_sources: dict[str, str] = field(default_factory=dict)  # map name -> class expr
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

    def cls(self, named: NamedType) -> str:
        name = py_name(named.name)
        if named.imported_from is not None:
            return f"{self.module_alias(named)}.{name}"
        return name

    def module_alias(self, named: NamedType) -> str:
        assert named.imported_from is not None
        return f"_imp_{named.imported_from.module_name}"

    def enc_fn(self, named: NamedType) -> str:
        if named.imported_from is not None:
            self.imported_codecs[named.name] = self.module_alias(named)
        return f"_enc_{py_name(named.name)}"

    def dec_fn(self, named: NamedType) -> str:
        if named.imported_from is not None:
            self.imported_codecs[named.name] = self.module_alias(named)
        return f"_dec_{py_name(named.name)}"

    def enum_map(self, named: NamedType) -> str:
        key = self.cls(named)
        if key not in self.enum_maps:
            name = f"_EM_{py_name(named.name)}"
            self.enum_maps[key] = name
            self.enum_sources[name] = key
            self.enum_checks[key] = f"_EC_{py_name(named.name)}"
        return self.enum_maps[key]

    def enum_check(self, named: NamedType) -> str:
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
        name = f"_R{len(self.run_infos)}"
        self.run_infos.append((name, paths, checks, names, holders))
        return name

    def inlinable(self, view: View) -> bool:
        if view.named is None or view.named.imported_from is not None:
            return False
        d = view.definition
        if d.name in self.recursive:
            return False
        if isinstance(d, StructDef):
            return len(d.fields) <= INLINE_MAX_ITEMS
        if isinstance(d, UnionDef):
            return len(d.arms) <= INLINE_MAX_ITEMS
        return False


def fixed_of(ctx: ModuleContext, view: View) -> Fixed | None:
    """The fused-run description of a fixed-size scalar view, or None."""
    k = view.kind
    if k == "prim":
        p, sp = view.primitive, view.spelling
        if p is Primitive.INT:
            if sp in ("char", "short"):
                lo, hi = (-128, 127) if sp == "char" else (-(2**15), 2**15 - 1)
                return Fixed(
                    "i",
                    "i",
                    4,
                    "_ck.CHAR" if sp == "char" else "_ck.SHORT",
                    enc_guard=f"if not {lo} <= {{x}} <= {hi}:",
                    dec_conv=("range", lo, hi),
                )
            return Fixed("i", "i", 4, "_ck.INT")
        if p is Primitive.UINT:
            if sp == "unsigned char":
                return Fixed("3xB", "I", 4, "_ck.UCHAR", dec_conv=("range", 0, 255))
            if sp == "unsigned short":
                return Fixed("2xH", "I", 4, "_ck.USHORT", dec_conv=("range", 0, 65535))
            return Fixed("I", "I", 4, "_ck.UINT")
        if p is Primitive.HYPER:
            return Fixed("q", "q", 8, "_ck.HYPER")
        if p is Primitive.UHYPER:
            return Fixed("Q", "Q", 8, "_ck.UHYPER")
        if p is Primitive.FLOAT:
            return Fixed("f", "f", 4, "_ck.FLOAT", dec_conv=("f32",), float32=True)
        if p is Primitive.DOUBLE:
            return Fixed("d", "d", 8, "_ck.DOUBLE")
        if p is Primitive.BOOL:
            return Fixed(
                "I",
                "I",
                4,
                "_ck.BOOL",
                # True/False or the ints 0/1, packed as themselves: struct
                # refuses a float such as 1.0 that the lookup would take for 1.
                enc_guard="if {x} not in _BOOLE:",
                dec_conv=("map", "_BOOLD"),
            )
        assert p is Primitive.QUADRUPLE
        return Fixed(
            "16s",
            "16s",
            16,
            "_ck.QUADRUPLE",
            enc_guard="if len({x}) != 16:",
            dec_conv=None,
        )
    if k == "enum":
        assert view.named is not None
        emap = ctx.enum_map(view.named)
        return Fixed(
            "i",
            "i",
            4,
            ctx.enum_check(view.named),
            # Membership first, then pack the value itself: struct rejects a float
            # such as 1.0 that a dict lookup would take for the member 1.
            enc_guard=f"if {{x}} not in {emap}:",
            dec_conv=("map", emap),
        )
    if k == "fixed_opaque":
        n = view.size
        pad = (-n) & 3
        fmt = f"{n}s" + (f"{pad}x" if pad else "")
        return Fixed(
            fmt,
            fmt,
            n + pad,
            f'_ck.OpaqueCheck("opaque[{n}]", {n})',
            enc_guard=f"if len({{x}}) != {n}:",
            dec_conv=("pad", n, pad) if pad else None,
        )
    return None


def bulk_format(elem: View) -> str | None:
    """struct code for arrays of plain numbers, packed/unpacked in one call."""
    if (
        elem.kind != "prim"
        or elem.primitive is None
        or elem.primitive not in _BULK_FORMATS
    ):
        return None
    if elem.spelling in ("char", "short", "unsigned char", "unsigned short"):
        return None
    return _BULK_FORMATS[elem.primitive]


class FunctionBody:
    """Lines of one generated function, with unique temporaries."""

    def __init__(self, ctx: ModuleContext, type_name: str, indent: int = 4) -> None:
        self.ctx = ctx
        self.type_name = type_name
        self.type_lit = string_literal(type_name)
        self.lines: list[str] = []
        self.indent = indent
        self._counter = 0
        self.depth = 0
        self.current_union_type = ""
        #: Union values declared with every arm's type: a range test there needs a
        #: temporary of the arm's own type, or mypy rejects it (issue 10, D4).
        self.wide_targets: set[str] = set()

    def tmp(self, prefix: str) -> str:
        while True:
            self._counter += 1
            name = f"{prefix}{self._counter}"
            if name not in self.ctx.module_names:
                return name

    def emit(self, text: str) -> None:
        self.lines.append(" " * self.indent + text)

    def emit_call(self, head: str, args: list[str], tail: str) -> None:
        self.lines.extend(bracketed(self.indent, head, args, tail))

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.emit(header)
        self.indent += 4
        yield
        self.indent -= 4

    @contextmanager
    def guarded(self, handler: list[tuple[str, list[str], str]]) -> Iterator[None]:
        """``try:`` the body, ``except Exception as e:`` then the given call lines."""
        self.emit("try:")
        self.indent += 4
        yield
        self.indent -= 4
        self.emit("except Exception as e:")
        self.indent += 4
        for head, args, tail in handler:
            self.emit_call(head, args, tail)
        self.indent -= 4

    # ------------------------------------------------------------------ encode

    def efail(self, path: Path) -> list[tuple[str, list[str], str]]:
        return [("raise _efail(", [self.type_lit, path.expr(), "e"], ") from None")]

    def encode(self, view: View, x: str, path: Path) -> None:
        """Statements appending the encoding of expression ``x`` (a name or attribute)."""
        fx = fixed_of(self.ctx, view)
        if fx is not None:
            self.encode_run([(fx, x, path)])
            return
        k = view.kind
        if k == "void":
            return
        if k in ("string", "var_opaque"):
            self.encode_bytes(view, x, path)
        elif k == "optional":
            assert view.element is not None
            if "." in x or "[" in x:
                # Read once, under a handler naming the field: the holder may be a
                # value of the wrong type (an inlined struct is only a local here).
                local = self.tmp("x")
                with self.guarded(self.efail(path)):
                    self.emit(f"{local} = {x}")
                x = local
            with self.block(f"if {x} is None:"):
                self.emit("buf += _FALSE")
            with self.block("else:"):
                self.emit("buf += _TRUE")
                self.encode(view.element, x, path)
        elif k in ("fixed_array", "var_array"):
            self.encode_array(view, x, path)
        elif k == "struct":
            self.encode_named(view, x, path, self.encode_struct_fields)
        elif k == "union":
            self.encode_named(view, x, path, self.encode_union_body)
        else:  # pragma: no cover - every view kind is handled above
            raise AssertionError(k)

    def encode_named(self, view: View, x: str, path: Path, inline: object) -> None:
        assert view.named is not None
        if self.depth < INLINE_MAX_DEPTH and self.ctx.inlinable(view):
            self.depth += 1
            if "." in x or "[" in x:
                local = self.tmp("x")
                with self.guarded(self.efail(path)):
                    self.emit(f"{local} = {x}")
                x = local
            inline(view.definition, x, path)  # type: ignore[operator]
            self.depth -= 1
            return
        with self.block("try:"):
            self.emit(f"{self.ctx.enc_fn(view.named)}(buf, {x})")
        with self.block("except _XdrError as e:"):
            self.emit_call("raise e.within(", [self.type_lit, path.expr()], ")")
        if "." in x or "[" in x:
            # Reading the field itself failed (the holder is of a wrong type).
            with self.block("except Exception as e:"):
                for head, args, tail in self.efail(path):
                    self.emit_call(head, args, tail)

    def fusable_union(self, view: View, path: Path) -> tuple[Fixed, Path] | None:
        """An inlined union's discriminant, which can join the fixed run before it."""
        if (
            view.kind != "union"
            or self.depth >= INLINE_MAX_DEPTH
            or not self.ctx.inlinable(view)
        ):
            return None
        d = view.definition
        assert isinstance(d, UnionDef)
        disc = d.discriminant
        fx = fixed_of(self.ctx, view_of(disc.kind, disc.type, disc.size))
        assert fx is not None
        return fx, path.attr(disc.name or "")

    def encode_struct_fields(self, d: StructDef, x: str, path: Path) -> None:
        items = field_items(d.fields, x, path)
        run: list[tuple[Fixed, str, Path]] = []
        i = 0
        while i < len(items):
            view, fx_x, fpath = items[i]
            fx = fixed_of(self.ctx, view)
            if fx is not None:
                run.append((fx, fx_x, fpath))
                if len(run) >= RUN_MAX_ITEMS:
                    self.encode_run(run)
                    run = []
                i += 1
                continue
            union = self.fusable_union(view, fpath)
            if union is not None and len(run) < RUN_MAX_ITEMS:
                # The run packs with the discriminant and a fixed arm, per arm.
                u, dv = self.load_union(view, fx_x, fpath)
                self.encode_union_fused(view, u, fpath, dv, union, run, self.encode_run)
                run = []
                i += 1
                continue
            if run:
                self.encode_run(run)
                run = []
            tail = self.fixed_after(items, i + 1) if view.kind == "string" else []
            union = None
            after = i + 1 + len(tail)
            # Only a string's group can carry a union: anything else encodes alone.
            if (
                view.kind == "string"
                and after < len(items)
                and len(tail) < GROUP_MAX_ITEMS
            ):
                union = self.fusable_union(items[after][0], items[after][2])
            if union is not None:
                uview, ux, upath = items[after]
                u, dv = self.load_union(uview, ux, upath)
                b, n = self.encode_group_text(view, fx_x, fpath)

                def pack_group(
                    run: list[tuple[Fixed, str, Path]], b: str = b, n: str = n
                ) -> None:
                    self.encode_group_pack(b, n, run)

                self.encode_union_fused(uview, u, upath, dv, union, tail, pack_group)
                i = after + 1
                continue
            if tail:
                self.encode_group(view, fx_x, fpath, tail)
                i += 1 + len(tail)
                continue
            self.encode(view, fx_x, fpath)
            i += 1
        if run:
            self.encode_run(run)

    def load_union(self, view: View, x: str, path: Path) -> tuple[str, str]:
        """Locals holding union ``x`` and its discriminant (to pack it early)."""
        d = view.definition
        assert isinstance(d, UnionDef)
        u, dv = self.tmp("x"), self.tmp("d")
        with self.guarded(self.efail(path)):
            self.emit(f"{u} = {x}")
            self.emit(f"{dv} = {u}.{union_disc_name(d.discriminant.name or '')}")
        return u, dv

    def encode_union_fused(
        self,
        view: View,
        u: str,
        path: Path,
        dv: str,
        union: tuple[Fixed, Path],
        prefix: list[tuple[Fixed, str, Path]],
        pack: Callable[[list[tuple[Fixed, str, Path]]], None],
    ) -> None:
        """Union ``u`` after the fixed ``prefix`` items, branching on ``dv`` first.

        Each arm packs the prefix, its discriminant and, when the arm is a
        fixed-size scalar, the arm's value in one ``pack`` call (``pack`` emits
        it: a plain run, or a string group).  Other arms encode after that call.
        """
        d = view.definition
        assert isinstance(d, UnionDef)
        disc_fx, dpath = union
        utype = union_value_type(self.ctx, d)
        self.depth += 1
        first = True
        for arm in d.arms:
            labels = [str(label.value) for label in arm.labels]
            cond = arm_test(dv, labels)
            with self.block(("if " if first else "elif ") + cond + ":"):
                if len(labels) == 1:
                    # One label: pack it as a constant (no enum lookup).
                    signed = int(labels[0]) < 0
                    const = Fixed(
                        "i" if signed else "I",
                        "i" if signed else "I",
                        4,
                        "_ck.INT" if signed else "_ck.UINT",
                    )
                    disc: tuple[Fixed, str, Path] = (const, labels[0], dpath)
                else:
                    disc = (disc_fx, dv, dpath)
                self.current_union_type = utype
                self.encode_arm_after(arm.declaration, u, path, prefix + [disc], pack)
            first = False
        with self.block("else:" if not first else "if True:"):
            if d.default is None:
                self.emit_call(
                    "raise _bad_disc_e(",
                    [self.type_lit, dpath.expr(), dv],
                    ")",
                )
            else:
                # Any valid value of the discriminant's type: its run checks it.
                self.current_union_type = utype
                self.encode_arm_after(
                    d.default, u, path, prefix + [(disc_fx, dv, dpath)], pack
                )
        self.depth -= 1

    def encode_arm_after(
        self,
        decl: Declaration,
        u: str,
        path: Path,
        items: list[tuple[Fixed, str, Path]],
        pack: Callable[[list[tuple[Fixed, str, Path]]], None],
    ) -> None:
        """Pack ``items`` (ending with the discriminant) and the arm of union ``u``."""
        view = view_of(decl.kind, decl.type, decl.size)
        fx = fixed_of(self.ctx, view) if view.kind != "void" else None
        if fx is not None and not (fx.enc_guard and self.guard_needs_arm_type(fx, view)):
            pack(items + [(fx, f"{u}.value", path.attr(decl.name or ""))])
            return
        pack(items)
        if view.kind != "void":
            self.encode_arm(decl, None, u, path)

    def fixed_after(
        self, items: list[tuple[View, str, Path]], start: int
    ) -> list[tuple[Fixed, str, Path]]:
        """The fixed-size items right after ``start`` that can join a string's group."""
        tail: list[tuple[Fixed, str, Path]] = []
        for view, x, path in items[start:]:
            fx = fixed_of(self.ctx, view)
            if fx is None or len(tail) >= GROUP_MAX_ITEMS:
                break
            tail.append((fx, x, path))
        return tail

    def encode_group(
        self, view: View, x: str, path: Path, run: list[tuple[Fixed, str, Path]]
    ) -> None:
        """A string and the fixed items after it: one ``pack`` per value."""
        b, n = self.encode_group_text(view, x, path)
        self.encode_group_pack(b, n, run)

    def encode_group_text(self, view: View, x: str, path: Path) -> tuple[str, str]:
        """Locals holding the checked UTF-8 bytes of string ``x`` and their length."""
        b, n = self.tmp("b"), self.tmp("n")
        self.encode_text(x, b, n, path)
        if view.bounded:
            with self.block(f"if {n} > {view.size}:"):
                self.emit_call(
                    "raise _too_long(",
                    [self.type_lit, path.expr(), '"string"', n, str(view.size)],
                    ")",
                )
        return b, n

    def encode_group_pack(
        self, b: str, n: str, run: list[tuple[Fixed, str, Path]]
    ) -> None:
        """Pack string bytes ``b`` of length ``n`` and the fixed items of ``run``."""
        table = self.ctx.length_formats(
            "".join(fx.enc_fmt for fx, _, _ in run), decode=False
        )
        values = [n, b] + [fx.enc_expr.format(x=x) for fx, x, _ in run]
        with self.guarded(self.run_handler_encode(run)):
            for fx, fx_x, _ in run:
                if fx.enc_guard:
                    with self.block(fx.enc_guard.format(x=fx_x)):
                        self.emit("raise _Invalid")
            self.emit_call(f"buf += {table}[{n}].pack(", values, ")")
            size = sum(fx.size for fx, _, _ in run)
            self.patch_float32(self.float32_items(run), "buf", "len(buf)", size)

    def encode_text(self, x: str, b: str, n: str, path: Path) -> None:
        """``b`` = UTF-8 of string ``x`` (lone surrogates as their escaped bytes)."""
        with self.guarded(self.efail(path)):
            # Plain UTF-8 is the fast, common case; surrogateescape gives the same
            # bytes for it and round-trips whatever bytes a decoder let through.
            with self.block("try:"):
                self.emit(f"{b} = {x}.encode()")
            with self.block("except UnicodeEncodeError:"):
                self.emit(f'{b} = {x}.encode("utf-8", "surrogateescape")')
            self.emit(f"{n} = len({b})")

    def encode_run(
        self, run: list[tuple[Fixed, str, Path]], *, returning: bool = False
    ) -> None:
        fmt = "".join(fx.enc_fmt for fx, _, _ in run)
        s = self.ctx.struct(fmt)
        values = [fx.enc_expr.format(x=x) for fx, x, _ in run]
        with self.guarded(self.run_handler_encode(run)):
            for fx, x, _ in run:
                if fx.enc_guard:
                    with self.block(fx.enc_guard.format(x=x)):
                        self.emit("raise _Invalid")
            floats = self.float32_items(run)
            if returning and floats:
                self.emit("r = bytearray()")
                self.emit_call(f"r += {s}.pack(", values, ")")
                size = sum(fx.size for fx, _, _ in run)
                self.patch_float32(floats, "r", "len(r)", size)
                self.emit("return bytes(r)")
            elif returning:
                self.emit_call(f"return {s}.pack(", values, ")")
            else:
                self.emit_call(f"buf += {s}.pack(", values, ")")
                size = sum(fx.size for fx, _, _ in run)
                self.patch_float32(floats, "buf", "len(buf)", size)

    @staticmethod
    def float32_items(
        run: list[tuple[Fixed, str, Path]], start: int = 0
    ) -> list[tuple[int, str]]:
        """(byte position in the run, value expression) of each float32 item."""
        out = []
        position = start
        for fx, x, _ in run:
            if fx.float32:
                out.append((position, x))
            position += fx.size
        return out

    def patch_float32(
        self, floats: list[tuple[int, str]], buf: str, end: str, size: int
    ) -> None:
        """After packing: rewrite NaNs that carry exact float32 bits (rare path)."""
        for position, x in floats:
            with self.block(f"if {x} != {x}:"):
                self.emit(f"_f32fix({buf}, {end} - {size - position}, {x})")

    def run_prefix(self, run: list[tuple[Fixed, str, Path]]) -> tuple[Path, list[str]]:
        """The common dynamic prefix of a run's paths, and the static rests."""
        first = run[0][2].pieces
        cut = 0
        for i, piece in enumerate(first):
            if isinstance(piece, tuple):
                cut = i + 2  # the index variable and its closing bracket
        prefix = Path(first[:cut])
        rests = []
        for _, _, p in run:
            rest = "".join(str(q) for q in p.pieces[cut:])
            rests.append(rest[1:] if rest.startswith(".") else rest)
        return prefix, rests

    def run_handler_encode(
        self, run: list[tuple[Fixed, str, Path]]
    ) -> list[tuple[str, list[str], str]]:
        prefix, rests = self.run_prefix(run)
        objs = {x.rpartition(".")[0] for _, x, _ in run}
        holders = False
        if len(objs) == 1 and all("." in x for _, x, _ in run):
            names: list[str] | None = [x.rpartition(".")[2] for _, x, _ in run]
            source = objs.pop()
        else:
            # Several objects: pass the holders, not ``x.attr`` (which may be what
            # failed, and would raise again inside the handler).
            split = [_holder_and_name(x) for _, x, _ in run]
            holders = any(name for _, name in split)
            names = [name for _, name in split] if holders else None
            items = [holder for holder, _ in split] if holders else [x for _, x, _ in run]
            source = "(" + ", ".join(items) + (",)" if len(items) == 1 else ")")
        info = self.ctx.run_info(
            rests, [fx.check for fx, _, _ in run], names, holders=holders
        )
        return [
            (
                "raise _erun(",
                [self.type_lit, prefix.expr(), info, source, "e"],
                ") from None",
            )
        ]

    def encode_bytes(self, view: View, x: str, path: Path) -> None:
        what = "string" if view.kind == "string" else "opaque"
        b, n = self.tmp("b"), self.tmp("n")
        if view.kind == "string":
            self.encode_text(x, b, n, path)
        else:
            with self.guarded(self.efail(path)):
                self.emit(f"{b} = {x}")
                self.emit(f"{n} = len({b})")
        if view.bounded:
            with self.block(f"if {n} > {view.size}:"):
                self.emit_call(
                    "raise _too_long(",
                    [self.type_lit, path.expr(), f'"{what}"', n, str(view.size)],
                    ")",
                )
        self.emit(f"buf += _U32.pack({n})")
        if view.kind == "string":
            self.emit(f"buf += {b}")
        else:
            with self.guarded(self.efail(path)):
                self.emit(f"buf += {b}")
        with self.block(f"if {n} & 3:"):
            self.emit(f"buf += _PAD[{n} & 3]")

    def encode_array(self, view: View, x: str, path: Path) -> None:
        assert view.element is not None
        a, n = self.tmp("a"), self.tmp("n")
        with self.guarded(self.efail(path)):
            self.emit(f"{a} = {x}")
            self.emit(f"{n} = len({a})")
        if view.kind == "fixed_array":
            with self.block(f"if {n} != {view.size}:"):
                self.emit_call(
                    "raise _wrong_length(",
                    [self.type_lit, path.expr(), '"array"', n, str(view.size)],
                    ")",
                )
        else:
            if view.bounded:
                with self.block(f"if {n} > {view.size}:"):
                    self.emit_call(
                        "raise _too_long(",
                        [self.type_lit, path.expr(), '"array"', n, str(view.size)],
                        ")",
                    )
        elem = view.element
        bulk = bulk_format(elem)
        if bulk is not None:
            fixed = fixed_of(self.ctx, elem)
            assert fixed is not None
            with self.guarded(
                [
                    (
                        "raise _earr(",
                        [self.type_lit, path.expr(), a, fixed.check, "e"],
                        ") from None",
                    )
                ]
            ):
                if view.kind == "fixed_array":
                    s = self.ctx.struct(f"{view.size}{bulk}")
                    self.emit(f"buf += {s}.pack(*{a})")
                else:
                    self.emit(f'buf += _struct.pack(f">I{{{n}}}{bulk}", {n}, *{a})')
            return
        if view.kind == "var_array":
            if min_size(elem) == 0:
                # What the decoder refuses (difference 9) is not written either.
                with self.block(f"if {n} > len(buf) + 4:"):
                    self.emit_call(
                        "raise _too_many_empty(",
                        [self.type_lit, path.expr(), n, "len(buf) + 4", "None"],
                        ")",
                    )
            self.emit(f"buf += _U32.pack({n})")
        e = self.tmp("e")
        # No enumerate(): error handlers find the failing element's index.
        with self.block(f"for {e} in {a}:"):
            self.encode(elem, e, path.index(f"_at({a}, {e})"))

    def encode_union_body(self, d: UnionDef, x: str, path: Path) -> None:
        """The discriminant and arm of union ``x`` (see encode_union_fused for a
        union whose discriminant packs with the items before it)."""
        disc_attr = union_disc_name(d.discriminant.name or "")
        utype = union_value_type(self.ctx, d)
        disc_view = view_of(
            d.discriminant.kind, d.discriminant.type, d.discriminant.size
        )
        dv = self.tmp("d")
        with self.guarded(self.efail(path)):
            self.emit(f"{dv} = {x}.{disc_attr}")
        first = True
        for arm in d.arms:
            labels = [str(label.value) for label in arm.labels]
            cond = arm_test(dv, labels)
            with self.block(("if " if first else "elif ") + cond + ":"):
                # One label: pack it as a constant; several: pack the (matched) value.
                label = labels[0] if len(labels) == 1 else dv
                self.current_union_type = utype
                before = len(self.lines)
                self.encode_arm(
                    arm.declaration,
                    label,
                    x,
                    path,
                    signed=min(int(v) for v in labels) < 0,
                )
                if len(self.lines) == before:
                    self.emit("pass")
            first = False
        with self.block("else:" if not first else "if True:"):
            if d.default is None:
                self.emit_call(
                    "raise _bad_disc_e(",
                    [self.type_lit, path.attr(d.discriminant.name or "").expr(), dv],
                    ")",
                )
            else:
                before = len(self.lines)
                # The discriminant is any valid value of its type here: check it.
                fx = fixed_of(self.ctx, disc_view)
                assert fx is not None
                self.encode_run([(fx, dv, path.attr(d.discriminant.name or ""))])
                self.current_union_type = utype
                self.encode_arm(d.default, None, x, path)
                if len(self.lines) == before:
                    self.emit("pass")

    def guard_needs_arm_type(self, fx: Fixed, view: View) -> bool:
        """Whether mypy needs ``fx``'s guard to see this arm's type (issue 10, D2):
        ``len()`` and range tests fail on the union's ``bytes | None`` or ``int | str``."""
        assert fx.enc_guard is not None
        if "len(" not in fx.enc_guard and "<=" not in fx.enc_guard:
            return False  # membership tests take any type
        arm_type = py_type_of_view(self.ctx, view)
        others = set(_top_level_parts(self.current_union_type)) - {arm_type}
        if arm_type == "int":
            others.discard("bool")  # bool is an int: the union is assignable
        return bool(others)

    def encode_arm(
        self, decl: object, label: str | None, x: str, path: Path, signed: bool = False
    ) -> None:
        assert isinstance(decl, Declaration)
        view = view_of(decl.kind, decl.type, decl.size)
        if label is not None:
            fx = fixed_of(self.ctx, view)
            if fx is not None and view.kind != "void":
                # Pack the discriminant (a constant here) with the arm in one call.
                s_fmt = "i" if signed else "I"
                fused = Fixed(
                    s_fmt + fx.enc_fmt,
                    "",
                    4 + fx.size,
                    fx.check,
                    fx.enc_expr,
                    fx.enc_guard,
                )
                s = self.ctx.struct(fused.enc_fmt)
                with self.guarded(
                    self.run_handler_encode(
                        [(fx, f"{x}.value", path.attr(decl.name or ""))]
                    )
                ):
                    arm_value = f"{x}.value"
                    if fx.enc_guard and self.guard_needs_arm_type(fx, view):
                        # len() / range tests need this arm's type, not the union's.
                        arm_value = self.tmp("u")
                        arm_type = py_type_of_view(self.ctx, view)
                        self.emit(
                            f"{arm_value}: {arm_type} = {x}.value  # type: ignore[assignment]"
                        )
                    if fx.enc_guard:
                        with self.block(fx.enc_guard.format(x=arm_value)):
                            self.emit("raise _Invalid")
                    self.emit_call(
                        f"buf += {s}.pack(",
                        [label, fx.enc_expr.format(x=arm_value)],
                        ")",
                    )
                    if fx.float32:
                        self.patch_float32([(4, f"{x}.value")], "buf", "len(buf)", 8)
                return
            s = self.ctx.struct("i" if signed else "I")
            self.emit(f"buf += {s}.pack({label})")
        if view.kind == "void":
            return
        fx = fixed_of(self.ctx, view)
        if fx is not None and not (fx.enc_guard and self.guard_needs_arm_type(fx, view)):
            self.encode_run([(fx, f"{x}.value", path.attr(decl.name or ""))])
            return
        # A guard that needs the arm's type: through the narrowed local below.
        value = self.tmp("u")
        arm_type = py_type_of_view(self.ctx, view)
        with self.guarded(self.efail(path)):
            if arm_type == self.current_union_type:
                self.emit(f"{value} = {x}.value")
            else:
                # The attribute holds any arm's type; this arm's is narrower.  When
                # the arm is a number, mypy may find the other arms' types fit it
                # (bool and enums are ints, ints are floats): the ignore is unused.
                numeric = {"int", "float"} & set(arm_type.split(" | "))
                codes = "assignment, unused-ignore" if numeric else "assignment"
                self.emit(f"{value}: {arm_type} = {x}.value  # type: ignore[{codes}]")
        self.encode(view, value, path.attr(decl.name or ""))

    # ------------------------------------------------------------------ decode

    def dfail(self, path: Path) -> list[tuple[str, list[str], str]]:
        return [
            (
                "raise _dfail(",
                [self.type_lit, path.expr(), "e", "data", "off"],
                ") from None",
            )
        ]

    def decode(self, view: View, target: str, path: Path) -> None:
        """Statements decoding at ``off`` into ``target`` and advancing ``off``."""
        fx = fixed_of(self.ctx, view)
        if fx is not None:
            self.decode_run([(fx, target, path)])
            return
        k = view.kind
        if k == "void":
            self.emit(f"{target} = None")
        elif k in ("string", "var_opaque"):
            self.decode_bytes(view, target, path)
        elif k == "optional":
            assert view.element is not None
            flag = self.tmp("f")
            with self.guarded(self.dfail(path)):
                self.emit(f"({flag},) = _U32.unpack_from(data, off)")
            with self.block(f"if {flag} == 1:"):
                self.emit("off += 4")
                self.decode(view.element, target, path)
            with self.block(f"elif {flag} == 0:"):
                self.emit("off += 4")
                self.emit(f"{target} = None")
            with self.block("else:"):
                self.emit_call(
                    "raise _bad_opt(", [self.type_lit, path.expr(), flag, "off"], ")"
                )
        elif k in ("fixed_array", "var_array"):
            self.decode_array(view, target, path)
        elif k in ("struct", "union"):
            assert view.named is not None
            if self.depth < INLINE_MAX_DEPTH and self.ctx.inlinable(view):
                self.depth += 1
                d = view.definition
                if isinstance(d, StructDef):
                    self.decode_struct_inline(view, target, path)
                else:
                    assert isinstance(d, UnionDef)
                    self.decode_union_body(view, target, path)
                self.depth -= 1
                return
            with self.block("try:"):
                self.emit(f"{target}, off = {self.ctx.dec_fn(view.named)}(data, off)")
            with self.block("except _XdrError as e:"):
                self.emit_call("raise e.within(", [self.type_lit, path.expr()], ")")
        else:  # pragma: no cover
            raise AssertionError(k)

    def decode_struct_inline(self, view: View, target: str, path: Path) -> None:
        assert view.named is not None
        o = self.tmp("o")
        self.emit(f"{o} = _new({self.ctx.cls(view.named)})")
        d = view.definition
        assert isinstance(d, StructDef)
        self.decode_struct_fields(d, o, path)
        self.emit(f"{target} = {o}")

    def decode_struct_fields(
        self, d: StructDef, o: str, path: Path, *, skip_last: bool = False
    ) -> None:
        items = field_items(d.fields[:-1] if skip_last else d.fields, o, path)
        run: list[tuple[Fixed, str, Path]] = []
        i = 0
        while i < len(items):
            view, target, fpath = items[i]
            fx = fixed_of(self.ctx, view)
            if fx is not None:
                run.append((fx, target, fpath))
                if len(run) >= RUN_MAX_ITEMS:
                    self.decode_run(run)
                    run = []
                i += 1
                continue
            union = self.fusable_union(view, fpath)
            if union is not None and len(run) < RUN_MAX_ITEMS:
                # The discriminant unpacks with the run; the arms follow.
                dv = self.tmp("d")
                run.append((union[0], dv, union[1]))
                self.decode_run(run)
                run = []
                self.decode_fused_union(view, target, fpath, dv)
                i += 1
                continue
            if run:
                self.decode_run(run)
                run = []
            tail = (
                self.fixed_after(items, i + 1)
                if view.kind in ("string", "var_opaque")
                else []
            )
            union = None
            after = i + 1 + len(tail)
            if (
                view.kind in ("string", "var_opaque")
                and after < len(items)
                and len(tail) < GROUP_MAX_ITEMS
            ):
                union = self.fusable_union(items[after][0], items[after][2])
            if union is not None:
                uview, utarget, upath = items[after]
                dv = self.tmp("d")
                self.decode_group(
                    view, target, fpath, tail + [(union[0], dv, union[1])]
                )
                self.decode_fused_union(uview, utarget, upath, dv)
                i = after + 1
                continue
            if tail:
                self.decode_group(view, target, fpath, tail)
                i += 1 + len(tail)
                continue
            self.decode(view, target, fpath)
            i += 1
        if run:
            self.decode_run(run)

    def decode_fused_union(self, view: View, target: str, path: Path, dv: str) -> None:
        self.depth += 1
        self.decode_union_body(view, target, path, decoded=dv)
        self.depth -= 1

    def decode_group(
        self, view: View, target: str, path: Path, run: list[tuple[Fixed, str, Path]]
    ) -> None:
        """A string/opaque and the fixed items after it: one ``unpack_from``."""
        n, b, p = self.tmp("n"), self.tmp("b"), self.tmp("p")
        with self.guarded(self.dfail(path)):
            self.emit(f"({n},) = _U32.unpack_from(data, off)")
        self.group_bound(view, path, n)
        table = self.ctx.length_formats(
            "".join(fx.dec_fmt for fx, _, _ in run), decode=True
        )
        self.group_unpack(view, path, n, run, f"{table}[{n}]", b, p)
        self.group_finish(view, target, b, n, run)

    def group_bound(self, view: View, path: Path, n: str) -> None:
        """Refuse a string/opaque length word ``n`` above the declared bound."""
        if view.bounded:
            what = "string" if view.kind == "string" else "opaque"
            with self.block(f"if {n} > {view.size}:"):
                self.emit_call(
                    "raise _decl_too_long(",
                    [self.type_lit, path.expr(), f'"{what}"', n, str(view.size), "off"],
                    ")",
                )

    def group_unpack(
        self,
        view: View,
        path: Path,
        n: str,
        run: list[tuple[Fixed, str, Path]],
        packer: str,
        b: str,
        p: str,
        *,
        next_path: Path | None = None,
        trail: tuple[str, ...] = (),
    ) -> None:
        """``_, b, p, run..., trail... = packer.unpack_from(data, off)``, the padding
        check, and the handler that explains a failure (``_dgroup``; ``next_path``
        names the element whose length word ``trail`` reads, if any).  A ``trail``
        packer expression is bound to a local first (inside the ``try``), which
        keeps the unpack targets on one line."""
        what = "string" if view.kind == "string" else "opaque"
        prefix, rests = self.run_prefix(run)
        info = self.ctx.run_info(rests, [fx.check for fx, _, _ in run], None)
        args = [self.type_lit, path.expr(), f'"{what}"', n, prefix.expr(), info]
        args += ["data", "off", "e"]
        if next_path is not None:
            args.append(next_path.expr())
        with self.guarded([("raise _dgroup(", args, ") from None")]):
            if trail:
                k = self.tmp("k")
                self.emit(f"{k} = {packer}")
                packer = k
            self.emit_unpack(
                run, ["_", b, p], packer, "off", f"off + (({n} + 7) & -4)", trail=trail
            )
            with self.block(f"if {p} != _PAD[{n} & 3]:"):
                self.emit("raise _Invalid")

    def group_finish(
        self,
        view: View,
        target: str,
        b: str,
        n: str,
        run: list[tuple[Fixed, str, Path]],
    ) -> None:
        """Store the group's bytes ``b`` (as text for a string) and step past it."""
        if view.kind == "string":
            self.decode_text(b, target)
        else:
            self.emit(f"{target} = {b}")
        size = sum(fx.size for fx, _, _ in run)
        self.emit(f"off += (({n} + 3) & -4) + {4 + size}")

    def decode_text(self, raw: str, target: str) -> None:
        """``target`` = the str of UTF-8 bytes ``raw`` (invalid bytes escaped)."""
        with self.block("try:"):
            self.emit(f"{target} = {raw}.decode()")
        with self.block("except UnicodeDecodeError:"):
            self.emit(f'{target} = {raw}.decode("utf-8", "surrogateescape")')

    def decode_run(
        self,
        run: list[tuple[Fixed, str, Path]],
        *,
        at: str = "off",
        advance: bool = True,
    ) -> None:
        fmt = "".join(fx.dec_fmt for fx, _, _ in run)
        s = self.ctx.struct(fmt)
        prefix, rests = self.run_prefix(run)
        info = self.ctx.run_info(rests, [fx.check for fx, _, _ in run], None)
        handler = [
            (
                "raise _drun(",
                [self.type_lit, prefix.expr(), info, "data", at, "e"],
                ") from None",
            )
        ]
        with self.guarded(handler):
            self.emit_unpack(run, [], s, at, at)
            if advance:
                self.emit(f"off += {sum(fx.size for fx, _, _ in run)}")

    def decode_whole(self, run: list[tuple[Fixed, str, Path]], size: int) -> None:
        """Decode a whole value that is one fused run from all of ``data``."""
        s = self.ctx.struct("".join(fx.dec_fmt for fx, _, _ in run))
        prefix, rests = self.run_prefix(run)
        info = self.ctx.run_info(rests, [fx.check for fx, _, _ in run], None)
        handler = [
            (
                "raise _dwhole(",
                [self.type_lit, info, "data", str(size), "e"],
                ") from None",
            )
        ]
        with self.guarded(handler):
            self.emit_unpack(run, [], s, "0", "0", whole=True)

    def emit_unpack(
        self,
        run: list[tuple[Fixed, str, Path]],
        lead: list[str],
        packer: str,
        at: str,
        base: str,
        *,
        whole: bool = False,
        trail: tuple[str, ...] = (),
    ) -> None:
        """``lead..., run targets, trail... = packer.unpack_from(data, at)`` plus
        conversions (``trail`` names items unpacked after the run).

        ``base`` is the offset expression where the run itself starts (positions
        of NaNs and pads are relative to it).
        """
        # Range-checked items unpack straight into their targets too and are tested
        # there afterwards: a failed test discards the whole value being decoded,
        # and skipping the temporaries saves a store and a load per item.
        direct = all(
            fx.dec_conv is None
            or (fx.dec_conv[0] == "range" and t not in self.wide_targets)
            for fx, t, _ in run
        )
        targets = [t for _, t, _ in run] if direct else [self.tmp("t") for _ in run]
        names = lead + targets + list(trail)
        lhs = f"({names[0]},)" if len(names) == 1 else ", ".join(names)
        if (
            len(f"{' ' * self.indent}{lhs} = {packer}.unpack_from(data, {at})") > LINE
            and direct
        ):
            targets = [self.tmp("t") for _ in run]
            direct = False
            names = lead + targets + list(trail)
            lhs = f"({names[0]},)" if len(names) == 1 else ", ".join(names)
        if len(f"{' ' * self.indent}{lhs} = {packer}.unpack_from(") > LINE - 4:
            short = self.tmp("k")
            self.emit(f"{short} = {packer}")
            packer = short
        if whole:
            self.emit_call(f"{lhs} = {packer}.unpack(", ["data"], ")")
        else:
            self.emit_call(f"{lhs} = {packer}.unpack_from(", ["data", at], ")")
        if direct:
            tests = [
                range_test(fx, t) for (fx, _, _), t in zip(run, targets) if fx.dec_conv
            ]
            merged = " or ".join(tests)
            if tests and len(f"{' ' * self.indent}if {merged}:") <= LINE:
                tests = [merged]  # one branch on success
            for cond in tests:
                with self.block(f"if {cond}:"):
                    self.emit("raise _Invalid")
            return

        def where(position: int) -> str:
            if position == 0:
                return base
            return str(position) if base == "0" else f"{base} + {position}"

        # All range tests of the run in one ``if`` (one branch on success).
        ranges = [
            range_test(fx, t)
            for (fx, _, _), t in zip(run, targets)
            if fx.dec_conv is not None and fx.dec_conv[0] == "range"
        ]
        merged = f"if {' or '.join(ranges)}:"
        if ranges and len(" " * self.indent + merged) <= LINE:
            with self.block(merged):
                self.emit("raise _Invalid")
            ranges = []
        position = 0
        for (fx, target, _), t in zip(run, targets):
            conv = fx.dec_conv
            if conv is None:
                self.emit(f"{target} = {t}")
            elif conv[0] == "map":
                self.emit(f"{target} = {conv[1]}[{t}]")
            elif conv[0] == "f32":
                self.lines.extend(
                    assignment(
                        self.indent,
                        target,
                        f"{t} if {t} == {t} else _f32nan(data, {where(position)})",
                    )
                )
            elif conv[0] == "range":
                if ranges:  # too many to merge on one line: one test each
                    with self.block(f"if {range_test(fx, t)}:"):
                        self.emit("raise _Invalid")
                self.emit(f"{target} = {t}")
            else:  # padding of a fixed opaque: must be zero
                n, pad = conv[1], conv[2]
                assert isinstance(n, int) and isinstance(pad, int)
                p1 = self.tmp("p")
                self.emit(f"{p1} = {where(position + n)}")
                with self.block(
                    f"if data[{p1} : {p1} + {pad}] != _PAD[{(4 - pad) & 3}]:"
                ):
                    self.emit("raise _Invalid")
                self.emit(f"{target} = {t}")
            position += fx.size

    def decode_bytes(self, view: View, target: str, path: Path) -> None:
        what = "string" if view.kind == "string" else "opaque"
        n, s, e, q = self.tmp("n"), self.tmp("s"), self.tmp("e"), self.tmp("q")
        with self.guarded(self.dfail(path)):
            self.emit(f"({n},) = _U32.unpack_from(data, off)")
        if view.bounded:
            with self.block(f"if {n} > {view.size}:"):
                self.emit_call(
                    "raise _decl_too_long(",
                    [self.type_lit, path.expr(), f'"{what}"', n, str(view.size), "off"],
                    ")",
                )
        if view.kind == "string":
            self.decode_string_alone(path, n, target)
            return
        self.emit(f"{s} = off + 4")
        self.emit(f"{e} = {s} + {n}")
        self.emit(f"{q} = ({e} + 3) & -4")
        with self.block(f"if {q} > len(data):"):
            self.emit_call(
                "raise _past_end(",
                [
                    self.type_lit,
                    path.expr(),
                    f'"{what}"',
                    n,
                    f"{q} - {s}",
                    "data",
                    "off",
                ],
                ")",
            )
        self.emit(f"{target} = bytes(data[{s}:{e}])")
        with self.block(f"if {n} & 3 and data[{e}:{q}] != _PAD[{n} & 3]:"):
            self.emit_call("raise _bad_pad(", [self.type_lit, path.expr(), e], ")")
        self.emit(f"off = {q}")

    def decode_string_alone(self, path: Path, n: str, target: str) -> None:
        """A string with nothing fixed after it: bytes and padding in one unpack.

        ``n`` is its length word, already read and checked against the bound.
        Measured against slicing ``data`` and ``str(slice, "utf-8", ...)``: about
        100 ns less per string (the struct call makes the bytes object, and
        ``bytes.decode()`` takes its fast path).
        """
        b, p = self.tmp("b"), self.tmp("p")
        table = self.ctx.length_formats("", decode=True)
        with self.block("try:"):
            self.emit(f"_, {b}, {p} = {table}[{n}].unpack_from(data, off)")
        with self.block("except _struct.error:"):
            self.emit_call(
                "raise _past_end(",
                [
                    self.type_lit,
                    path.expr(),
                    '"string"',
                    n,
                    f"({n} + 3) & -4",
                    "data",
                    "off",
                ],
                ") from None",
            )
        with self.block(f"if {p} != _PAD[{n} & 3]:"):
            self.emit_call(
                "raise _bad_pad(", [self.type_lit, path.expr(), f"off + 4 + {n}"], ")"
            )
        self.decode_text(b, target)
        self.emit(f"off += (({n} + 3) & -4) + 4")

    def decode_array(self, view: View, target: str, path: Path) -> None:
        assert view.element is not None
        elem = view.element
        n = self.tmp("n")
        if view.kind == "var_array":
            with self.guarded(self.dfail(path)):
                self.emit(f"({n},) = _U32.unpack_from(data, off)")
            if view.bounded:
                with self.block(f"if {n} > {view.size}:"):
                    self.emit_call(
                        "raise _decl_too_long(",
                        [
                            self.type_lit,
                            path.expr(),
                            '"array"',
                            n,
                            str(view.size),
                            "off",
                        ],
                        ")",
                    )
            least = min_size(elem)
            if least:
                need = f"{n} * {least}" if least != 1 else n
                with self.block(f"if off + 4 + {need} > len(data):"):
                    self.emit_call(
                        "raise _past_end(",
                        [self.type_lit, path.expr(), '"array"', n, need, "data", "off"],
                        ")",
                    )
            else:
                # Elements of no bytes (``T x[0]``): no remaining length bounds the
                # count, the input's does, so the list stays sized by what was sent.
                with self.block(f"if {n} > len(data):"):
                    self.emit_call(
                        "raise _too_many_empty(",
                        [self.type_lit, path.expr(), n, "len(data)", "off"],
                        ")",
                    )
            self.emit("off += 4")
            count = n
            if least and self.bulk_new_elements(elem, target, path, n):
                return
        else:
            count = str(view.size)
        bulk = bulk_format(elem)
        if bulk is not None:
            size = 8 if bulk in "qQd" else 4
            with self.guarded(self.dfail(path)):
                if view.kind == "fixed_array":
                    s = self.ctx.struct(f"{view.size}{bulk}")
                    self.emit(f"{target} = list({s}.unpack_from(data, off))")
                else:
                    self.emit(
                        f'{target} = list(_struct.unpack_from(f">{{{n}}}{bulk}", data, off))'
                    )
            self.emit(
                f"off += {count} * {size}"
                if view.kind == "var_array"
                else f"off += {view.size * size}"
            )
            return
        lst, i, ap = self.tmp("l"), self.tmp("i"), self.tmp("ap")
        self.emit(f"{lst}: list[{self.py_type(elem)}] = []")
        self.emit(f"{ap} = {lst}.append")
        el = self.tmp("v")
        with self.block(f"for {i} in range({count}):"):
            self.decode(elem, el, path.index(i))
            last = self.lines[-1]
            head = " " * self.indent + f"{el} = "
            if last.startswith(head) and last[len(head) :].isidentifier():
                last = last.strip()
                # ``v = o; append(v)``: append the new object directly.
                self.lines.pop()
                self.emit(f"{ap}({last[len(el) + 3 :]})")
            else:
                self.emit(f"{ap}({el})")
        self.emit(f"{target} = {lst}")

    def bulk_new_elements(self, elem: View, target: str, path: Path, n: str) -> bool:
        """Decode an array of inlinable structs into objects made in one C loop.

        ``list(map(_new, _repeat(C, n)))`` builds the n blank instances without a
        bytecode round per object, and the loop then only fills them in (no
        ``append``).  Callers have already checked that ``n`` elements fit in the
        remaining bytes, so this allocates no more objects than the input could
        hold.  An element's index, needed only for an error path, is found from
        the object itself.
        """
        if (
            elem.kind != "struct"
            or self.depth >= INLINE_MAX_DEPTH
            or not self.ctx.inlinable(elem)
        ):
            return False
        assert elem.named is not None
        d = elem.definition
        assert isinstance(d, StructDef)
        lst, o = self.tmp("l"), self.tmp("o")
        self.emit(f"{lst} = list(map(_new, _repeat({self.ctx.cls(elem.named)}, {n})))")
        self.depth += 1
        items = field_items(d.fields, o, path.index(f"_at({lst}, {o})"))
        tail = self.fixed_after(items, 1)
        if (
            ARRAY_LOOKAHEAD
            and items[0][0].kind in ("string", "var_opaque")
            and tail
            and len(tail) == len(items) - 1
            and len(tail) < GROUP_MAX_ITEMS
        ):
            first = d.fields[0].name or ""
            self.decode_groups_ahead(
                items[0],
                tail,
                lst,
                o,
                n,
                Path(path.pieces + ("[0]",)).attr(first),
                path.index(f"_after({lst}, {o})").attr(first),
            )
        else:
            with self.block(f"for {o} in {lst}:"):
                self.decode_struct_fields(d, o, path.index(f"_at({lst}, {o})"))
        self.depth -= 1
        self.emit(f"{target} = {lst}")
        return True

    def decode_groups_ahead(
        self,
        head: tuple[View, str, Path],
        run: list[tuple[Fixed, str, Path]],
        lst: str,
        o: str,
        count: str,
        first_path: Path,
        next_path: Path,
    ) -> None:
        """Fill ``lst``'s elements, each a string/opaque then fixed items, with one
        ``unpack_from`` per element that also reads the next element's length word.

        Saves one call per element (measured: 20 ns of ~270 per W2 domain).  The
        last element's format reads a dummy ``0s`` instead, so nothing is read
        past the array.  If an unpack fails although the element is whole, the
        error names the next element's length word, as item-by-item decoding would.
        """
        view, target, path = head
        n, b, p, m, z = (self.tmp(x) for x in ("n", "b", "p", "m", "z"))
        with self.block(f"if {count}:"):
            with self.guarded(self.dfail(first_path)):
                self.emit(f"({n},) = _U32.unpack_from(data, off)")
            self.emit(f"{z} = {lst}[-1]")
        tail = "".join(fx.dec_fmt for fx, _, _ in run)
        ahead = self.ctx.length_formats(tail + "I", decode=True)
        final = self.ctx.length_formats(tail + "0s", decode=True)
        with self.block(f"for {o} in {lst}:"):
            self.group_bound(view, path, n)
            self.group_unpack(
                view,
                path,
                n,
                run,
                f"({ahead} if {o} is not {z} else {final})[{n}]",
                b,
                p,
                next_path=next_path,
                trail=(m,),
            )
            self.group_finish(view, target, b, n, run)
            self.emit(f"{n} = {m}")

    def decode_union_body(
        self, view: View, target: str, path: Path, decoded: str | None = None
    ) -> None:
        """Decode union ``view``; ``decoded`` names its discriminant when the caller
        has already decoded it (fused into the run before the union)."""
        assert view.named is not None
        d = view.definition
        assert isinstance(d, UnionDef)
        disc_view = view_of(
            d.discriminant.kind, d.discriminant.type, d.discriminant.size
        )
        dpath = path.attr(d.discriminant.name or "")
        val = self.tmp("w")
        if decoded is None:
            dv = self.tmp("d")
            fx = fixed_of(self.ctx, disc_view)
            assert fx is not None
            self.decode_run([(fx, dv, dpath)])
        else:
            dv = decoded
        utype = self.union_value_type(d)
        self.emit(f"{val}: {utype}")
        if set(_top_level_parts(utype)) - {"int", "bool"}:
            self.wide_targets.add(val)
        first = True
        for arm in d.arms:
            labels = [str(label.value) for label in arm.labels]
            cond = arm_test(dv, labels)
            with self.block(("if " if first else "elif ") + cond + ":"):
                decl = arm.declaration
                self.decode(
                    view_of(decl.kind, decl.type, decl.size),
                    val,
                    path.attr(decl.name or ""),
                )
            first = False
        with self.block("else:" if not first else "if True:"):
            if d.default is None:
                self.emit_call(
                    "raise _bad_disc_d(",
                    [self.type_lit, dpath.expr(), dv, "off - 4"],
                    ")",
                )
            else:
                decl = d.default
                self.decode(
                    view_of(decl.kind, decl.type, decl.size),
                    val,
                    path.attr(decl.name or ""),
                )
        o = self.tmp("o")
        self.emit(f"{o} = _new({self.ctx.cls(view.named)})")
        self.emit(f"{o}.{union_disc_name(d.discriminant.name or '')} = {dv}")
        self.emit(f"{o}.value = {val}")
        self.emit(f"{target} = {o}")

    # ------------------------------------------------------------------ types

    def py_type(self, view: View) -> str:
        return py_type_of_view(self.ctx, view)

    def union_value_type(self, d: UnionDef) -> str:
        return union_value_type(self.ctx, d)


def _holder_and_name(x: str) -> tuple[str, str]:
    """``("x3", "value")`` for ``x3.value``; ``(x, "")`` for a local or a constant."""
    holder, dot, name = x.rpartition(".")
    if dot and holder.isidentifier():
        return holder, name
    return x, ""


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


def py_type_of_view(ctx: ModuleContext, view: View) -> str:
    k = view.kind
    if k == "prim":
        p = view.primitive
        if p is Primitive.BOOL:
            return "bool"
        if p in (Primitive.FLOAT, Primitive.DOUBLE):
            return "float"
        if p is Primitive.QUADRUPLE:
            return "bytes"
        return "int"
    if k in ("enum", "struct", "union"):
        assert view.named is not None
        return ctx.cls(view.named)
    if k in ("fixed_opaque", "var_opaque"):
        return "bytes"
    if k == "string":
        return "str"
    if k == "void":
        return "None"
    assert view.element is not None
    if k == "optional":
        return f"{py_type_of_view(ctx, view.element)} | None"
    return f"list[{py_type_of_view(ctx, view.element)}]"


def _top_level_parts(annotation: str) -> list[str]:
    """``list[int | None] | None`` -> ``["list[int | None]", "None"]``."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(annotation):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth == 0 and annotation.startswith(" | ", index):
            parts.append(annotation[start:index])
            start = index + 3
    parts.append(annotation[start:])
    return parts


def union_value_type(ctx: ModuleContext, d: UnionDef) -> str:
    decls = [a.declaration for a in d.arms] + (
        [d.default] if d.default is not None else []
    )
    types: list[str] = []
    for decl in decls:
        t = py_type_of_view(ctx, view_of(decl.kind, decl.type, decl.size))
        for part in _top_level_parts(t):
            if part not in types:
                types.append(part)
    if "None" in types:
        types.remove("None")
        types.append("None")
    return " | ".join(types) if types else "None"


def unused(
    _: object,
) -> None:  # pragma: no cover - keeps UNBOUNDED imported for readers
    del _


_ = (EnumDef, UNBOUNDED)


def field_items(
    fields: list[Declaration], x: str, path: Path
) -> list[tuple[View, str, Path]]:
    """(view, attribute expression on ``x``, field path) of each struct field, in order."""
    items = []
    for f in fields:
        assert f.name is not None
        items.append(
            (
                view_of(f.kind, f.type, f.size),
                f"{x}.{field_name(f.name)}",
                path.attr(f.name),
            )
        )
    return items
