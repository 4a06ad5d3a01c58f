"""The decode emitter: a plan -> statements decoding at ``off`` and advancing it.

Every decision (what is inlined, which fields unpack together, reading ahead
across array elements) comes from the plan (:mod:`xdrgen.generator.plan`);
this module only writes the Python.  Fused runs and string groups are
unpacked by :mod:`xdrgen.generator.marshal.unpack`.
"""

from __future__ import annotations

from xdrgen.generator.layout import string_literal
from xdrgen.generator.marshal.body import Item, Path
from xdrgen.generator.marshal.context import (
    fixed,
    py_type,
    top_level_parts,
    union_value_type,
)
from xdrgen.generator.marshal.unpack import Unpacker
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


class Decoder(Unpacker):
    """Statements of ``_dec_<T>(data, off)`` and of the whole-value ``decode``."""

    # ------------------------------------------------------------------ values

    def value(self, node: Node, target: str, path: Path) -> None:
        """Statements decoding at ``off`` into ``target`` and advancing ``off``."""
        self.take(node)
        if isinstance(node, Scalar):
            self.decode_run([(fixed(self.ctx, node), target, path)])
        elif isinstance(node, Void):
            self.emit(f"{target} = None")
        elif isinstance(node, Bytes):
            self.decode_bytes(node, target, path)
        elif isinstance(node, Optional):
            flag = self.tmp("f")
            with self.guarded(self.dfail(path)):
                self.emit(f"({flag},) = _U32.unpack_from(data, off)")
            with self.block(f"if {flag} == 1:"):
                self.emit("off += 4")
                self.value(node.element, target, path)
            with self.block(f"elif {flag} == 0:"):
                self.emit("off += 4")
                self.emit(f"{target} = None")
            with self.block("else:"):
                self.emit_call(
                    "raise _bad_opt(", [self.type_lit, path.expr(), flag, "off"], ")"
                )
        elif isinstance(node, Array):
            self.decode_array(node, target, path)
        elif isinstance(node, Struct):
            o = self.tmp("o")
            self.emit(f"{o} = _new({self.ctx.cls(node.type)})")
            self.body(node.body, o, path)
            self.emit(f"{target} = {o}")
        elif isinstance(node, Union):
            self.union_body(node, target, path)
        else:
            assert isinstance(node, Call)
            with self.block("try:"):
                self.emit(f"{target}, off = {self.ctx.dec_fn(node.type)}(data, off)")
            with self.block("except _XdrError as e:"):
                self.emit_call("raise e.within(", [self.type_lit, path.expr()], ")")

    # ------------------------------------------------------------------ structs

    def body(self, segments: tuple[Segment, ...], o: str, path: Path) -> None:
        """The fields of struct ``o``, segment by segment."""
        for segment in segments:
            self.take(segment)
            if isinstance(segment, Run):
                run = [self.item(f, o, path) for f in segment.fields]
                if segment.union is None:
                    self.decode_run(run)
                    continue
                # The discriminant unpacks with the run; the arms follow.
                union = segment.union
                dv = self.tmp("d")
                run.append(self.discriminant(union, dv, path))
                self.decode_run(run)
                self.fused_union(union, o, path, dv)
            elif isinstance(segment, Group):
                head = segment.head
                assert isinstance(head.node, Bytes)
                self.take(head, head.node)
                run = [self.item(f, o, path) for f in segment.tail]
                target, hpath = f"{o}.{head.attr}", path.attr(head.name)
                if segment.union is None:
                    self.decode_group(head.node, target, hpath, run)
                    continue
                union = segment.union
                dv = self.tmp("d")
                run.append(self.discriminant(union, dv, path))
                self.decode_group(head.node, target, hpath, run)
                self.fused_union(union, o, path, dv)
            else:
                assert isinstance(segment, Alone)
                f = segment.field
                self.take(f)
                self.value(f.node, f"{o}.{f.attr}", path.attr(f.name))

    def discriminant(self, field: Field, dv: str, path: Path) -> Item:
        """The run item of union field ``field``'s discriminant, read into ``dv``."""
        union = field.node
        assert isinstance(union, Union)
        self.take(field, union, union.discriminant, union.discriminant.node)
        scalar = union.discriminant.node
        assert isinstance(scalar, Scalar)
        dpath = path.attr(field.name).attr(union.discriminant.name)
        return (fixed(self.ctx, scalar), dv, dpath)

    def fused_union(self, field: Field, o: str, path: Path, dv: str) -> None:
        assert isinstance(field.node, Union)
        target = f"{o}.{field.attr}"
        self.union_body(field.node, target, path.attr(field.name), decoded=dv)

    def union_body(
        self, union: Union, target: str, path: Path, decoded: str | None = None
    ) -> None:
        """Decode ``union``; ``decoded`` names its discriminant when the caller
        has already decoded it (fused into the run before the union)."""
        dpath = path.attr(union.discriminant.name)
        val = self.tmp("w")
        if decoded is None:
            self.take(union.discriminant, union.discriminant.node)
            scalar = union.discriminant.node
            assert isinstance(scalar, Scalar)
            dv = self.tmp("d")
            self.decode_run([(fixed(self.ctx, scalar), dv, dpath)])
        else:
            dv = decoded
        utype = union_value_type(self.ctx, union)
        self.emit(f"{val}: {utype}")
        if set(top_level_parts(utype)) - {"int", "bool"}:
            self.wide_targets.add(val)

        def arm(case: Arm) -> None:
            f = case.field
            self.take(case, f)
            self.value(f.node, val, path.attr(f.name))

        def missing() -> None:
            self.emit_call(
                "raise _bad_disc_d(", [self.type_lit, dpath.expr(), dv, "off - 4"], ")"
            )

        self.branches(union, dv, arm, missing)
        o = self.tmp("o")
        self.emit(f"{o} = _new({self.ctx.cls(union.type)})")
        self.emit(f"{o}.{union.discriminant.attr} = {dv}")
        self.emit(f"{o}.value = {val}")
        self.emit(f"{target} = {o}")

    # ------------------------------------------------------------------ arrays

    def decode_array(self, node: Array, target: str, path: Path) -> None:
        elem = node.element
        n = self.tmp("n")
        if node.variable:
            with self.guarded(self.dfail(path)):
                self.emit(f"({n},) = _U32.unpack_from(data, off)")
            self.bound_check("_decl_too_long", path, "array", n, node.length, "off")
            least = node.min_element_size
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
                # count, the input's does, so the list stays sized by what was sent
                # (difference 9, D21).
                with self.block(f"if {n} > len(data):"):
                    self.emit_call(
                        "raise _too_many_empty(",
                        [self.type_lit, path.expr(), n, "len(data)", "off"],
                        ")",
                    )
            self.emit("off += 4")
            count = n
            if node.decode_prebuilt:
                self.prebuilt_elements(node, target, path, n)
                return
        else:
            count = str(node.length)
        if node.bulk is not None:
            self.take(elem)
            size = 8 if node.bulk in "qQd" else 4
            with self.guarded(self.dfail(path)):
                if not node.variable:
                    s = self.ctx.struct(f"{node.length}{node.bulk}")
                    self.emit(f"{target} = list({s}.unpack_from(data, off))")
                else:
                    self.emit(
                        f'{target} = list(_struct.unpack_from(f">{{{n}}}{node.bulk}", data, off))'
                    )
            if node.variable:
                self.emit(f"off += {count} * {size}")
            else:
                assert node.length is not None
                self.emit(f"off += {node.length * size}")
            return
        lst, i, ap = self.tmp("l"), self.tmp("i"), self.tmp("ap")
        self.emit(f"{lst}: list[{py_type(self.ctx, elem)}] = []")
        self.emit(f"{ap} = {lst}.append")
        el = self.tmp("v")
        with self.block(f"for {i} in range({count}):"):
            self.value(elem, el, path.index(i))
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

    def prebuilt_elements(self, node: Array, target: str, path: Path, n: str) -> None:
        """Decode an array of inlined structs into objects made in one C loop.

        ``list(map(_new, _repeat(C, n)))`` builds the n blank instances without a
        bytecode round per object, and the loop then only fills them in (no
        ``append``).  The caller has already checked that ``n`` elements fit in
        the remaining bytes, so this allocates no more objects than the input
        could hold.  An element's index, needed only for an error path, is found
        from the object itself.
        """
        elem = node.element
        assert isinstance(elem, Struct)
        self.take(elem)
        lst, o = self.tmp("l"), self.tmp("o")
        self.emit(f"{lst} = list(map(_new, _repeat({self.ctx.cls(elem.type)}, {n})))")
        here = path.index(f"_at({lst}, {o})")
        if node.decode_lookahead:
            group = elem.body[0]
            assert isinstance(group, Group)
            self.take(group)
            head = group.head
            assert isinstance(head.node, Bytes)
            self.take(head, head.node)
            run = [self.item(f, o, here) for f in group.tail]
            self.groups_ahead(
                head.node,
                (f"{o}.{head.attr}", here.attr(head.name)),
                run,
                lst,
                o,
                n,
                Path(path.pieces + ("[0]",)).attr(head.name),
                path.index(f"_after({lst}, {o})").attr(head.name),
            )
        else:
            with self.block(f"for {o} in {lst}:"):
                self.body(elem.body, o, here)
        self.emit(f"{target} = {lst}")

    # ------------------------------------------------------------------ lists

    def linked_list(self, plan: ListPlan) -> None:
        """Linked lists (``T *next`` last): a loop instead of recursion, any length."""
        link = plan.link
        assert isinstance(link.node, Optional)
        name = string_literal(plan.type.name)
        cls = self.ctx.cls(plan.type)
        self.emit(f"head = o = _new({cls})")
        self.emit("k = 0")
        with self.block("try:"):
            with self.block("while True:"):
                self.body(plan.body, "o", Path())
                self.take(link, link.node, link.node.element)
                with self.guarded(self.dfail(Path((link.name,)))):
                    self.emit("(f,) = _U32.unpack_from(data, off)")
                self.emit("off += 4")
                with self.block("if f == 0:"):
                    self.emit(f"o.{link.attr} = None")
                    self.emit("return head, off")
                with self.block("if f != 1:"):
                    self.emit_call(
                        "raise _bad_opt(",
                        [name, string_literal(link.name), "f", "off - 4"],
                        ")",
                    )
                self.emit(f"o.{link.attr} = o = _new({cls})")
                self.emit("k += 1")
        with self.block("except _XdrError as e:"):
            self.emit(f'raise e.within({name}, _chain("{link.name}", k))')
