"""The encoder and the decoder of every type follow one marshalling plan (issue 10).

Each emitter records the plan parts (segments, fields, nodes, arms) it used, in
order.  For every type of demo.x, libvirt's remote_protocol.x,
guestfs_protocol.x, tests/xfiles/*.x and the Debian corpus (tests/corpus.py),
and for the procedure parameters that name no type, both lists must be the very same objects in the same order, and
together they must cover the whole plan: neither direction may take a shortcut
the plan does not describe, or skip part of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from xdrgen.frontend import load
from xdrgen.frontend.options import FrontendOptions
from corpus import CORPUS, CorpusFile, require_corpus_file
from xdrgen.generator.marshal import ModuleContext, type_functions
from xdrgen.generator.marshal.encode import Encoder
from xdrgen.generator.plan.nodes import (
    ListPlan,
    StructPlan,
    TypeName,
    TypePlan,
    UnionPlan,
    ValuePlan,
)
from xdrgen.generator.render import ModuleRenderer
from xdrgen.generator.views import view_of
from xdrgen.model import DeclKind, EnumDef, StructDef, TypedefDef, UnionDef, XdrModule

REPO = Path(__file__).resolve().parents[1]
XFILES = sorted((REPO / "tests" / "xfiles").glob("*.x"))


def parts(node: object) -> Iterator[object]:
    """Every plan part below ``node`` (dataclass instances, not type names)."""
    for f in dataclasses.fields(node):  # type: ignore[arg-type]
        value = getattr(node, f.name)
        for item in value if isinstance(value, tuple) else (value,):
            if dataclasses.is_dataclass(item) and not isinstance(item, TypeName):
                yield item
                yield from parts(item)


def plan_parts(plan: TypePlan) -> list[object]:
    """The parts a type's ``_enc_``/``_dec_`` functions must use."""
    if isinstance(plan, (StructPlan, ListPlan, ValuePlan)):
        return list(parts(plan))
    assert isinstance(plan, UnionPlan)
    return [plan.union, *parts(plan.union)]


def check_plan(ctx: ModuleContext, plan: TypePlan) -> None:
    functions = type_functions(ctx, plan)
    name = plan.type.name
    encoded = [id(part) for part in functions.encoded]
    decoded = [id(part) for part in functions.decoded]
    assert encoded, name
    assert encoded == decoded, f"{name}: encoder and decoder left the plan"
    assert set(encoded) == {id(p) for p in plan_parts(plan)}, name


def check_module(model: XdrModule) -> int:
    """Assert both directions follow each plan (every type, and every procedure
    parameter that names no type); return how many plans were checked."""
    renderer = ModuleRenderer(model, "plan_check", [])
    count = 0
    for d in model.types.values():
        if isinstance(d, (EnumDef, StructDef, UnionDef, TypedefDef)):
            check_plan(renderer.ctx, renderer.plan(d))
            count += 1
    for table in model.procedure_tables:
        for proc in table.procedures:
            for param in [*proc.args, proc.result]:
                if param is not None and param.kind is not DeclKind.PLAIN:
                    view = view_of(param.kind, param.type, param.size)
                    plan = renderer.planner.value_plan(TypeName(proc.name), view)
                    check_plan(renderer.ctx, plan)
                    count += 1
    return count


def test_demo() -> None:
    assert check_module(load(REPO / "protocols" / "demo.x")) > 20


def test_remote_protocol(remote_protocol_x: Path, libvirt_header: Path) -> None:
    options = FrontendOptions(constants_from=(libvirt_header,))
    assert check_module(load(remote_protocol_x, options)) > 400


def test_guestfs_protocol(guestfs_protocol_x: Path) -> None:
    assert check_module(load(guestfs_protocol_x)) > 200


@pytest.mark.parametrize("x_file", XFILES, ids=[p.name for p in XFILES])
def test_xfiles(x_file: Path) -> None:
    assert check_module(load(x_file)) > 0


@pytest.mark.parametrize("entry", CORPUS, ids=[entry.name for entry in CORPUS])
def test_corpus(entry: CorpusFile) -> None:
    options = FrontendOptions(
        imports=entry.imports, constants_from=entry.constants_from
    )
    assert check_module(load(require_corpus_file(entry), options)) > 0


def test_procedure_parameters_are_checked_too() -> None:
    model = load(REPO / "tests" / "xfiles" / "proc_params.x")
    types = sum(
        isinstance(d, (EnumDef, StructDef, UnionDef, TypedefDef))
        for d in model.types.values()
    )
    assert check_module(model) > types


def test_a_direction_that_leaves_the_plan_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is not vacuous: an encoder writing fields out of order fails it."""
    source = tmp_path / "order.x"
    source.write_text("struct pair { string a<>; string b<>; };\n")
    model = load(source)
    assert check_module(model) == 1
    original = Encoder.body

    def backwards(
        self: Encoder, segments: tuple[object, ...], x: str, path: object
    ) -> None:
        original(self, tuple(reversed(segments)), x, path)  # type: ignore[arg-type]

    monkeypatch.setattr(Encoder, "body", backwards)
    with pytest.raises(AssertionError, match="left the plan"):
        check_module(model)
