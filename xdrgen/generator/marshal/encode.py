"""The encode emitter: a plan -> statements appending a value's XDR to ``buf``.

Every decision (what is inlined, which fields pack together) comes from the
plan (:mod:`xdrgen.generator.plan`); this module only writes the Python.
"""

from __future__ import annotations

from collections.abc import Callable

from xdrgen.generator.layout import string_literal
from xdrgen.generator.marshal.body import FunctionBody, Handler, Item, Path, run_prefix
from xdrgen.generator.marshal.context import (
    Fixed,
    fixed,
    py_type,
    top_level_parts,
    union_value_type,
)
from xdrgen.generator.plan.nodes import (
    Alone,
    Arm,
    Array,
    Bytes,
    Call,
    Field,
    Group,
    ListPlan,
    Node,
    Optional,
    Run,
    Scalar,
    Segment,
    Struct,
    Union,
    Void,
)

#: Packs a run's items (a plain run, or a string group's ``pack``).
Pack = Callable[[list[Item]], None]


class Encoder(FunctionBody):
    """Statements of ``_enc_<T>(buf, v)`` and of the whole-value ``encode``."""

    def efail(self, path: Path) -> Handler:
        return [("raise _efail(", [self.type_lit, path.expr(), "e"], ") from None")]

    # ------------------------------------------------------------------ values

    def value(self, node: Node, x: str, path: Path) -> None:
        """Statements appending the encoding of expression ``x`` (a name or attribute)."""
        self.take(node)
        if isinstance(node, Scalar):
            self.encode_run([(fixed(self.ctx, node), x, path)])
        elif isinstance(node, Void):
            pass
        elif isinstance(node, Bytes):
            self.encode_bytes(node, x, path)
        elif isinstance(node, Optional):
            # Read once, under a handler naming the field: the holder may be a
            # value of the wrong type (an inlined struct is only a local here: D15).
            x = self.local(x, path)
            with self.block(f"if {x} is None:"):
                self.emit("buf += _FALSE")
            with self.block("else:"):
                self.emit("buf += _TRUE")
                self.value(node.element, x, path)
        elif isinstance(node, Array):
            self.encode_array(node, x, path)
        elif isinstance(node, Struct):
            self.body(node.body, self.local(x, path), path)
        elif isinstance(node, Union):
            self.union_body(node, self.local(x, path), path)
        else:
            assert isinstance(node, Call)
            self.call(node, x, path)

    def local(self, x: str, path: Path) -> str:
        """``x`` itself, or a local holding it when reading it could fail."""
        if "." not in x and "[" not in x:
            return x
        local = self.tmp("x")
        with self.guarded(self.efail(path)):
            self.emit(f"{local} = {x}")
        return local

    def call(self, node: Call, x: str, path: Path) -> None:
        with self.block("try:"):
            self.emit(f"{self.ctx.enc_fn(node.type)}(buf, {x})")
        with self.block("except _XdrError as e:"):
            self.emit_call("raise e.within(", [self.type_lit, path.expr()], ")")
        if "." in x or "[" in x:
            # Reading the field itself failed (the holder is of a wrong type).
            with self.block("except Exception as e:"):
                for head, args, tail in self.efail(path):
                    self.emit_call(head, args, tail)

    # ------------------------------------------------------------------ structs

    def body(self, segments: tuple[Segment, ...], x: str, path: Path) -> None:
        """The fields of struct ``x``, segment by segment."""
        for segment in segments:
            self.take(segment)
            if isinstance(segment, Run):
                run = [self.item(f, x, path) for f in segment.fields]
                if segment.union is None:
                    self.encode_run(run)
                else:
                    self.fused_union(segment.union, x, path, run, self.encode_run)
            elif isinstance(segment, Group):
                self.group(segment, x, path)
            else:
                assert isinstance(segment, Alone)
                f = segment.field
                self.take(f)
                self.value(f.node, f"{x}.{f.attr}", path.attr(f.name))

    def group(self, group: Group, x: str, path: Path) -> None:
        """A string (or opaque) and the fixed fields after it."""
        head = group.head
        assert isinstance(head.node, Bytes)
        hx, hpath = f"{x}.{head.attr}", path.attr(head.name)
        self.take(head)
        if group.encode_head_apart:
            self.value(head.node, hx, hpath)
            tail = [self.item(f, x, path) for f in group.tail]
            if group.union is not None:
                self.fused_union(group.union, x, path, tail, self.encode_run)
            elif tail:
                self.encode_run(tail)
            return
        self.take(head.node)
        tail = [self.item(f, x, path) for f in group.tail]
        if group.union is None:
            b, n = self.group_text(head.node, hx, hpath)
            self.group_pack(b, n, tail)
            return
        # The union is read before the string is encoded.
        union = group.union
        u, dv = self.load_union(union, f"{x}.{union.attr}", path.attr(union.name))
        b, n = self.group_text(head.node, hx, hpath)

        def pack_group(run: list[Item], b: str = b, n: str = n) -> None:
            self.group_pack(b, n, run)

        self.fused_union(union, x, path, tail, pack_group, (u, dv))

    def group_text(self, node: Bytes, x: str, path: Path) -> tuple[str, str]:
        """Locals holding the checked UTF-8 bytes of string ``x`` and their length."""
        b, n = self.tmp("b"), self.tmp("n")
        self.encode_text(x, b, n, path)
        self.bound_check("_too_long", path, "string", n, node.bound)
        return b, n

    def group_pack(self, b: str, n: str, run: list[Item]) -> None:
        """Pack string bytes ``b`` of length ``n`` and the fixed items of ``run``."""
        table = self.ctx.length_formats(
            "".join(fx.enc_fmt for fx, _, _ in run), decode=False
        )
        values = [n, b] + [fx.enc_expr.format(x=x) for fx, x, _ in run]
        with self.guarded(self.run_handler(run)):
            self.guards(run)
            self.emit_call(f"buf += {table}[{n}].pack(", values, ")")
            size = sum(fx.size for fx, _, _ in run)
            self.patch_float32(float32_items(run), "buf", "len(buf)", size)

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

    # ------------------------------------------------------------------ runs

    def guards(self, run: list[Item]) -> None:
        for fx, x, _ in run:
            if fx.enc_guard:
                with self.block(fx.enc_guard.format(x=x)):
                    self.emit("raise _Invalid")

    def encode_run(self, run: list[Item], *, returning: bool = False) -> None:
        s = self.ctx.struct("".join(fx.enc_fmt for fx, _, _ in run))
        values = [fx.enc_expr.format(x=x) for fx, x, _ in run]
        size = sum(fx.size for fx, _, _ in run)
        with self.guarded(self.run_handler(run)):
            self.guards(run)
            floats = float32_items(run)
            if returning and floats:
                self.emit("r = bytearray()")
                self.emit_call(f"r += {s}.pack(", values, ")")
                self.patch_float32(floats, "r", "len(r)", size)
                self.emit("return bytes(r)")
            elif returning:
                self.emit_call(f"return {s}.pack(", values, ")")
            else:
                self.emit_call(f"buf += {s}.pack(", values, ")")
                self.patch_float32(floats, "buf", "len(buf)", size)

    def patch_float32(
        self, floats: list[tuple[int, str]], buf: str, end: str, size: int
    ) -> None:
        """After packing: rewrite NaNs that carry exact float32 bits (rare path)."""
        for position, x in floats:
            with self.block(f"if {x} != {x}:"):
                self.emit(f"_f32fix({buf}, {end} - {size - position}, {x})")

    def run_handler(self, run: list[Item]) -> Handler:
        prefix, _ = run_prefix(run)
        objs = {x.rpartition(".")[0] for _, x, _ in run}
        holders = False
        if len(objs) == 1 and all("." in x for _, x, _ in run):
            names: list[str] | None = [x.rpartition(".")[2] for _, x, _ in run]
            source = objs.pop()
        else:
            # Several objects: pass the holders, not ``x.attr`` (which may be what
            # failed, and would raise again inside the handler: D18).
            split = [_holder_and_name(x) for _, x, _ in run]
            holders = any(name for _, name in split)
            names = [name for _, name in split] if holders else None
            items = [h for h, _ in split] if holders else [x for _, x, _ in run]
            source = "(" + ", ".join(items) + (",)" if len(items) == 1 else ")")
        info = self.run_info(run, names, holders=holders)
        return [
            (
                "raise _erun(",
                [self.type_lit, prefix.expr(), info, source, "e"],
                ") from None",
            )
        ]

    # ------------------------------------------------------------------ lengths

    def encode_bytes(self, node: Bytes, x: str, path: Path) -> None:
        what = "string" if node.text else "opaque"
        b, n = self.tmp("b"), self.tmp("n")
        if node.text:
            self.encode_text(x, b, n, path)
        else:
            with self.guarded(self.efail(path)):
                self.emit(f"{b} = {x}")
                self.emit(f"{n} = len({b})")
        self.bound_check("_too_long", path, what, n, node.bound)
        self.emit(f"buf += _U32.pack({n})")
        if node.text:
            self.emit(f"buf += {b}")
        else:
            with self.guarded(self.efail(path)):
                self.emit(f"buf += {b}")
        with self.block(f"if {n} & 3:"):
            self.emit(f"buf += _PAD[{n} & 3]")

    def encode_array(self, node: Array, x: str, path: Path) -> None:
        a, n = self.tmp("a"), self.tmp("n")
        with self.guarded(self.efail(path)):
            self.emit(f"{a} = {x}")
            self.emit(f"{n} = len({a})")
        if not node.variable:
            with self.block(f"if {n} != {node.length}:"):
                self.emit_call(
                    "raise _wrong_length(",
                    [self.type_lit, path.expr(), '"array"', n, str(node.length)],
                    ")",
                )
        else:
            self.bound_check("_too_long", path, "array", n, node.length)
        elem = node.element
        if node.bulk is not None:
            assert isinstance(elem, Scalar)
            self.take(elem)
            check = fixed(self.ctx, elem).check
            handler = [
                (
                    "raise _earr(",
                    [self.type_lit, path.expr(), a, check, "e"],
                    ") from None",
                )
            ]
            with self.guarded(handler):
                if not node.variable:
                    s = self.ctx.struct(f"{node.length}{node.bulk}")
                    self.emit(f"buf += {s}.pack(*{a})")
                else:
                    self.emit(
                        f'buf += _struct.pack(f">I{{{n}}}{node.bulk}", {n}, *{a})'
                    )
            return
        if node.variable:
            # Elements of no bytes (difference 9) are written whatever their count:
            # refusing here what the decoder would take from a longer input broke
            # re-encoding decoded values (D22).
            self.emit(f"buf += _U32.pack({n})")
        e = self.tmp("e")
        # No enumerate(): error handlers find the failing element's index.
        with self.block(f"for {e} in {a}:"):
            self.value(elem, e, path.index(f"_at({a}, {e})"))

    # ------------------------------------------------------------------ unions

    def load_union(self, field: Field, x: str, path: Path) -> tuple[str, str]:
        """Locals holding union ``x`` and its discriminant (to pack it early)."""
        union = field.node
        assert isinstance(union, Union)
        u, dv = self.tmp("x"), self.tmp("d")
        with self.guarded(self.efail(path)):
            self.emit(f"{u} = {x}")
            self.emit(f"{dv} = {u}.{union.discriminant.attr}")
        return u, dv

    def fused_union(
        self,
        field: Field,
        x: str,
        path: Path,
        prefix: list[Item],
        pack: Pack,
        loaded: tuple[str, str] | None = None,
    ) -> None:
        """Union field ``field`` of ``x`` after the fixed ``prefix`` items,
        branching on its discriminant first.

        Each arm packs the prefix, its discriminant and, when the plan says so,
        the arm's value in one ``pack`` call (``pack`` emits it: a plain run, or
        a string group).  Other arms encode after that call.
        """
        union = field.node
        assert isinstance(union, Union)
        upath = path.attr(field.name)
        self.take(field, union, union.discriminant, union.discriminant.node)
        if loaded is None:
            loaded = self.load_union(field, f"{x}.{field.attr}", upath)
        u, dv = loaded
        disc_fx = fixed(self.ctx, self.discriminant_scalar(union))
        dpath = upath.attr(union.discriminant.name)
        utype = union_value_type(self.ctx, union)

        def arm(case: Arm) -> None:
            if len(case.labels) == 1:
                # One label: pack it as a constant (no enum lookup).
                signed = case.labels[0] < 0
                const = Fixed(
                    "i" if signed else "I",
                    "i" if signed else "I",
                    4,
                    "_ck.INT" if signed else "_ck.UINT",
                )
                disc: Item = (const, str(case.labels[0]), dpath)
            else:
                # Several labels, or any valid value (the default): its run checks it.
                disc = (disc_fx, dv, dpath)
            self.arm_after(case, u, upath, prefix + [disc], pack, utype)

        self.branches(union, dv, arm, lambda: self.bad_discriminant(dpath, dv))

    def bad_discriminant(self, dpath: Path, dv: str) -> None:
        self.emit_call("raise _bad_disc_e(", [self.type_lit, dpath.expr(), dv], ")")

    @staticmethod
    def discriminant_scalar(union: Union) -> Scalar:
        node = union.discriminant.node
        assert isinstance(node, Scalar)
        return node

    def arm_after(
        self, arm: Arm, u: str, path: Path, items: list[Item], pack: Pack, utype: str
    ) -> None:
        """Pack ``items`` (ending with the discriminant) and the arm of union ``u``."""
        f = arm.field
        self.take(arm, f)
        if arm.encode_with_discriminant:
            assert isinstance(f.node, Scalar)
            self.take(f.node)
            fx = fixed(self.ctx, f.node)
            value = self.narrowed_apart(fx, f, u, path, utype)
            pack(items + [(fx, value, path.attr(f.name))])
            return
        pack(items)
        self.arm_value(f, u, path, utype)

    def union_body(self, union: Union, x: str, path: Path) -> None:
        """The discriminant and arm of union ``x`` (see :meth:`fused_union` for a
        union whose discriminant packs with the items before it)."""
        self.take(union.discriminant, union.discriminant.node)
        utype = union_value_type(self.ctx, union)
        dv = self.tmp("d")
        with self.guarded(self.efail(path)):
            self.emit(f"{dv} = {x}.{union.discriminant.attr}")
        dpath = path.attr(union.discriminant.name)

        def arm(case: Arm) -> None:
            if case.labels:
                # One label: pack it as a constant; several: pack the (matched) value.
                label = str(case.labels[0]) if len(case.labels) == 1 else dv
                signed = min(case.labels) < 0
                self.labelled_arm(case, label, x, path, signed, utype)
                return
            # The discriminant is any valid value of its type here: check it.
            disc_fx = fixed(self.ctx, self.discriminant_scalar(union))
            disc = [(disc_fx, dv, dpath)]
            self.arm_after(case, x, path, disc, self.encode_run, utype)

        self.branches(union, dv, arm, lambda: self.bad_discriminant(dpath, dv))

    def labelled_arm(
        self, arm: Arm, label: str, x: str, path: Path, signed: bool, utype: str
    ) -> None:
        f = arm.field
        self.take(arm, f)
        if arm.encode_with_discriminant:
            assert isinstance(f.node, Scalar)
            self.take(f.node)
            fx = fixed(self.ctx, f.node)
            # Pack the discriminant (a constant here) with the arm in one call.
            s = self.ctx.struct(("i" if signed else "I") + fx.enc_fmt)
            value = f"{x}.value"
            with self.guarded(self.run_handler([(fx, value, path.attr(f.name))])):
                value = self.narrowed(fx, f.node, value, utype)
                if fx.enc_guard:
                    with self.block(fx.enc_guard.format(x=value)):
                        self.emit("raise _Invalid")
                self.emit_call(
                    f"buf += {s}.pack(", [label, fx.enc_expr.format(x=value)], ")"
                )
                if fx.float32:
                    self.patch_float32([(4, value)], "buf", "len(buf)", 8)
            return
        s = self.ctx.struct("i" if signed else "I")
        self.emit(f"buf += {s}.pack({label})")
        self.arm_value(f, x, path, utype)

    def narrowed(self, fx: Fixed, node: Scalar, value: str, utype: str) -> str:
        """``value`` (a union's ``.value``), or a local annotated with the arm's own
        type when ``fx``'s guard needs it: mypy refuses ``len()`` and range tests
        on the union's ``bytes | None`` or ``int | str`` (issue 10, D5)."""
        if not guard_needs_arm_type(fx, py_type(self.ctx, node), utype):
            return value
        local = self.tmp("u")
        self.emit(narrowing(local, py_type(self.ctx, node), value))
        return local

    def narrowed_apart(
        self, fx: Fixed, f: Field, x: str, path: Path, utype: str
    ) -> str:
        """:meth:`narrowed` for a value packed by a run of its own making: the
        local is read under a handler naming the union."""
        assert isinstance(f.node, Scalar)
        if not guard_needs_arm_type(fx, py_type(self.ctx, f.node), utype):
            return f"{x}.value"
        with self.guarded(self.efail(path)):
            return self.narrowed(fx, f.node, f"{x}.value", utype)

    def arm_value(self, f: Field, x: str, path: Path, utype: str) -> None:
        """The value of arm ``f`` of union ``x`` (its discriminant already packed;
        ``utype``: the annotation of the union's ``value``)."""
        node = f.node
        if isinstance(node, Void):
            self.take(node)
            return
        if isinstance(node, Scalar):
            self.take(node)
            fx = fixed(self.ctx, node)
            value = self.narrowed_apart(fx, f, x, path, utype)
            self.encode_run([(fx, value, path.attr(f.name))])
            return
        value = self.tmp("u")
        arm_type = py_type(self.ctx, node)
        with self.guarded(self.efail(path)):
            if arm_type == utype:
                self.emit(f"{value} = {x}.value")
            else:
                self.emit(narrowing(value, arm_type, f"{x}.value"))
        self.value(node, value, path.attr(f.name))

    # ------------------------------------------------------------------ lists

    def linked_list(self, plan: ListPlan) -> None:
        """Linked lists (``T *next`` last): a loop instead of recursion, any length."""
        link = plan.link
        assert isinstance(link.node, Optional)
        name = string_literal(plan.type.name)
        # A list that links back into itself would never end: Brent's cycle test
        # (``mark`` jumps ahead at powers of two) costs one ``is`` per node.
        self.emit("k = 0")
        self.emit("mark = v")
        self.emit("jump = 1")
        with self.block("try:"):
            with self.block("while True:"):
                self.body(plan.body, "v", Path())
                self.take(link, link.node, link.node.element)
                with self.guarded(self.efail(Path((link.name,)))):
                    self.emit(f"nxt = v.{link.attr}")
                with self.block("if nxt is None:"):
                    self.emit("buf += _FALSE")
                    self.emit("return")
                with self.block("if nxt is mark:"):
                    self.emit_call("raise _cycle(", [name, f'"{link.name}"'], ")")
                self.emit("buf += _TRUE")
                self.emit("v = nxt")
                self.emit("k += 1")
                with self.block("if k == jump:"):
                    self.emit("mark = v")
                    self.emit("jump <<= 1")
        with self.block("except _XdrError as e:"):
            self.emit(f'raise e.within({name}, _chain("{link.name}", k))')
        with self.block("except Exception as e:"):
            # A "node" that is no node at all (its fields are read outside any
            # handler of their own): the error names its place in the list (D14).
            self.emit_call(
                "raise _efail(", [name, f'_chain("{link.name}", k)', "e"], ") from None"
            )


def float32_items(run: list[Item], start: int = 0) -> list[tuple[int, str]]:
    """(byte position in the run, value expression) of each float32 item."""
    out = []
    position = start
    for fx, x, _ in run:
        if fx.float32:
            out.append((position, x))
        position += fx.size
    return out


def guard_needs_arm_type(fx: Fixed, arm_type: str, utype: str) -> bool:
    """Whether ``fx``'s guard must see the arm's own type ``arm_type`` rather than
    the union's ``utype``: membership tests take any object; ``len()`` and range
    tests do not (bool is an int, so ``int | bool`` needs nothing)."""
    if fx.enc_guard is None or " not in " in fx.enc_guard:
        return False
    others = set(top_level_parts(utype)) - {arm_type}
    if arm_type == "int":
        others.discard("bool")
    return bool(others)


def narrowing(local: str, arm_type: str, value: str) -> str:
    """``local: arm_type = value``: a union's ``value`` holds any arm's type, this
    arm's is narrower.  When the arm is a number mypy may find the other arms'
    types fit it (bool and enums are ints, ints are floats): the ignore is then
    unused (D13)."""
    numeric = {"int", "float"} & set(top_level_parts(arm_type))
    codes = "assignment, unused-ignore" if numeric else "assignment"
    return f"{local}: {arm_type} = {value}  # type: ignore[{codes}]"


def _holder_and_name(x: str) -> tuple[str, str]:
    """``("x3", "value")`` for ``x3.value``; ``(x, "")`` for a local or a constant."""
    holder, dot, name = x.rpartition(".")
    if dot and holder.isidentifier():
        return holder, name
    return x, ""
