"""Decoding statements for fused runs, string groups and lone strings/opaques.

The pieces of the decode emitter that turn one plan segment into one
``unpack_from`` (with its checks, conversions and error handler).
"""

from __future__ import annotations

from xdrgen.generator.layout import LINE, assignment
from xdrgen.generator.marshal.body import (
    FunctionBody,
    Handler,
    Item,
    Path,
    run_prefix,
)
from xdrgen.generator.marshal.context import ModuleContext, range_test
from xdrgen.generator.plan.nodes import Bytes


def _what(node: Bytes) -> str:
    return '"string"' if node.text else '"opaque"'


class Unpacker(FunctionBody):
    """Runs, groups and lengths, for :class:`~xdrgen.generator.marshal.decode.Decoder`."""

    def __init__(self, ctx: ModuleContext, type_name: str, indent: int = 4) -> None:
        super().__init__(ctx, type_name, indent)
        #: Union values declared with every arm's type: a range test there needs a
        #: temporary of the arm's own type, or mypy rejects it (issue 10, D5).
        self.wide_targets: set[str] = set()

    def dfail(self, path: Path) -> Handler:
        return [
            (
                "raise _dfail(",
                [self.type_lit, path.expr(), "e", "data", "off"],
                ") from None",
            )
        ]

    def decode_group(
        self, node: Bytes, target: str, path: Path, run: list[Item]
    ) -> None:
        """A string/opaque and the fixed items after it: one ``unpack_from``."""
        n, b, p = self.tmp("n"), self.tmp("b"), self.tmp("p")
        with self.guarded(self.dfail(path)):
            self.emit(f"({n},) = _U32.unpack_from(data, off)")
        self.group_bound(node, path, n)
        table = self.ctx.length_formats(
            "".join(fx.dec_fmt for fx, _, _ in run), decode=True
        )
        self.group_unpack(node, path, n, run, f"{table}[{n}]", b, p)
        self.group_finish(node, target, b, n, run)

    def group_bound(self, node: Bytes, path: Path, n: str) -> None:
        """Refuse a string/opaque length word ``n`` above the declared bound."""
        if node.bound is not None:
            with self.block(f"if {n} > {node.bound}:"):
                self.emit_call(
                    "raise _decl_too_long(",
                    [
                        self.type_lit,
                        path.expr(),
                        _what(node),
                        n,
                        str(node.bound),
                        "off",
                    ],
                    ")",
                )

    def group_unpack(
        self,
        node: Bytes,
        path: Path,
        n: str,
        run: list[Item],
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
        prefix, _ = run_prefix(run)
        info = self.run_info(run)
        args = [self.type_lit, path.expr(), _what(node), n, prefix.expr(), info]
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
        self, node: Bytes, target: str, b: str, n: str, run: list[Item]
    ) -> None:
        """Store the group's bytes ``b`` (as text for a string) and step past it."""
        if node.text:
            self.decode_text(b, target)
        else:
            self.emit(f"{target} = {b}")
        size = sum(fx.size for fx, _, _ in run)
        self.emit(f"off += (({n} + 3) & -4) + {4 + size}")

    def groups_ahead(
        self,
        node: Bytes,
        head: tuple[str, Path],
        run: list[Item],
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
        target, path = head
        n, b, p, m, z = (self.tmp(x) for x in ("n", "b", "p", "m", "z"))
        with self.block(f"if {count}:"):
            with self.guarded(self.dfail(first_path)):
                self.emit(f"({n},) = _U32.unpack_from(data, off)")
            self.emit(f"{z} = {lst}[-1]")
        tail = "".join(fx.dec_fmt for fx, _, _ in run)
        ahead = self.ctx.length_formats(tail + "I", decode=True)
        final = self.ctx.length_formats(tail + "0s", decode=True)
        with self.block(f"for {o} in {lst}:"):
            self.group_bound(node, path, n)
            self.group_unpack(
                node,
                path,
                n,
                run,
                f"({ahead} if {o} is not {z} else {final})[{n}]",
                b,
                p,
                next_path=next_path,
                trail=(m,),
            )
            self.group_finish(node, target, b, n, run)
            self.emit(f"{n} = {m}")

    def decode_text(self, raw: str, target: str) -> None:
        """``target`` = the str of UTF-8 bytes ``raw`` (invalid bytes escaped)."""
        with self.block("try:"):
            self.emit(f"{target} = {raw}.decode()")
        with self.block("except UnicodeDecodeError:"):
            self.emit(f'{target} = {raw}.decode("utf-8", "surrogateescape")')

    # ------------------------------------------------------------------ runs

    def decode_run(self, run: list[Item]) -> None:
        """Unpack ``run`` at ``off`` and step past it."""
        s = self.ctx.struct("".join(fx.dec_fmt for fx, _, _ in run))
        prefix, _ = run_prefix(run)
        info = self.run_info(run)
        handler = [
            (
                "raise _drun(",
                [self.type_lit, prefix.expr(), info, "data", "off", "e"],
                ") from None",
            )
        ]
        with self.guarded(handler):
            self.emit_unpack(run, [], s, "off", "off")
            self.emit(f"off += {sum(fx.size for fx, _, _ in run)}")

    def decode_whole(self, run: list[Item], size: int) -> None:
        """Decode a whole value that is one fused run from all of ``data``."""
        s = self.ctx.struct("".join(fx.dec_fmt for fx, _, _ in run))
        info = self.run_info(run)
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
        run: list[Item],
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
        self.convert(run, targets, base)

    def convert(self, run: list[Item], targets: list[str], base: str) -> None:
        """Store unpacked temporaries ``targets`` into ``run``'s targets, checked."""

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

    # ------------------------------------------------------------------ lengths

    def decode_bytes(self, node: Bytes, target: str, path: Path) -> None:
        n, s, e, q = self.tmp("n"), self.tmp("s"), self.tmp("e"), self.tmp("q")
        with self.guarded(self.dfail(path)):
            self.emit(f"({n},) = _U32.unpack_from(data, off)")
        self.group_bound(node, path, n)
        if node.text:
            self.decode_string_alone(path, n, target)
            return
        self.emit(f"{s} = off + 4")
        self.emit(f"{e} = {s} + {n}")
        self.emit(f"{q} = ({e} + 3) & -4")
        with self.block(f"if {q} > len(data):"):
            self.emit_call(
                "raise _past_end(",
                [self.type_lit, path.expr(), _what(node), n, f"{q} - {s}"]
                + ["data", "off"],
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
                [self.type_lit, path.expr(), '"string"', n, f"({n} + 3) & -4"]
                + ["data", "off"],
                ") from None",
            )
        with self.block(f"if {p} != _PAD[{n} & 3]:"):
            self.emit_call(
                "raise _bad_pad(", [self.type_lit, path.expr(), f"off + 4 + {n}"], ")"
            )
        self.decode_text(b, target)
        self.emit(f"off += (({n} + 3) & -4) + 4")
