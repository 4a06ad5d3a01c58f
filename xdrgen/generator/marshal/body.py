"""Lines of one generated function, shared by the encode and decode emitters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from xdrgen.generator.layout import bracketed, string_literal
from xdrgen.generator.marshal.context import Fixed, ModuleContext, arm_test, fixed
from xdrgen.generator.plan.nodes import Arm, Field, Scalar, Union


@dataclass(frozen=True)
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


#: One item of a fused run: how it packs, the Python expression of its value
#: (its target when decoding) and its field path.
Item = tuple[Fixed, str, Path]
#: A handler's calls: (head, arguments, tail) for ``emit_call``.
Handler = list[tuple[str, list[str], str]]


class FunctionBody:
    """Lines of one generated function, with unique temporaries.

    ``consumed`` lists the plan nodes, fields, segments and arms the emitter
    used, in order: the encoder's and the decoder's lists must be the same
    (tests/test_marshal_plan.py), which shows that both follow one plan.
    """

    def __init__(self, ctx: ModuleContext, type_name: str, indent: int = 4) -> None:
        self.ctx = ctx
        self.type_name = type_name
        self.type_lit = string_literal(type_name)
        self.lines: list[str] = []
        self.indent = indent
        self._counter = 0
        self.consumed: list[object] = []

    def take(self, *parts: object) -> None:
        """Record plan parts as used (in the order the plan lists them)."""
        self.consumed.extend(parts)

    def tmp(self, prefix: str) -> str:
        """A fresh local ``<prefix><n>``, never a module-level name of the .x's
        (a type named ``x1`` would be hidden inside this function: D10)."""
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
    def guarded(self, handler: Handler) -> Iterator[None]:
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

    def branches(
        self,
        union: Union,
        dv: str,
        arm: Callable[[Arm], None],
        missing: Callable[[], None],
    ) -> None:
        """``if``/``elif`` on discriminant ``dv``, one branch per arm of ``union``
        (``arm`` writes it), then ``else:`` the default arm, or ``missing``."""
        first = True
        for case in union.arms:
            labels = [str(label) for label in case.labels]
            with self.block(("if " if first else "elif ") + arm_test(dv, labels) + ":"):
                self.nonempty(arm, case)
            first = False
        with self.block("else:" if not first else "if True:"):
            if union.default is None:
                missing()
            else:
                self.nonempty(arm, union.default)

    def nonempty(self, write: Callable[[Arm], None], case: Arm) -> None:
        """``write(case)``, or ``pass`` if that wrote nothing."""
        before = len(self.lines)
        write(case)
        if len(self.lines) == before:
            self.emit("pass")

    def bound_check(
        self, raiser: str, path: Path, what: str, n: str, bound: int | None, *at: str
    ) -> None:
        """``raiser(...)`` when length ``n`` of ``what`` exceeds ``bound`` (if any)."""
        if bound is not None:
            with self.block(f"if {n} > {bound}:"):
                self.emit_call(
                    f"raise {raiser}(",
                    [self.type_lit, path.expr(), f'"{what}"', n, str(bound), *at],
                    ")",
                )

    def item(self, field: Field, x: str, path: Path) -> Item:
        """Fixed-size field ``field`` of ``x`` as a run item (recorded as used)."""
        assert isinstance(field.node, Scalar)
        self.take(field, field.node)
        return (fixed(self.ctx, field.node), f"{x}.{field.attr}", path.attr(field.name))

    def run_info(
        self, run: list[Item], names: list[str] | None = None, *, holders: bool = False
    ) -> str:
        """The module's RunInfo for ``run`` (paths after the run's prefix)."""
        _, rests = run_prefix(run)
        checks = [fx.check for fx, _, _ in run]
        return self.ctx.run_info(rests, checks, names, holders=holders)


def run_prefix(run: list[Item]) -> tuple[Path, list[str]]:
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
