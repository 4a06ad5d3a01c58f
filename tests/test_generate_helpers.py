"""Helpers shared by the generator tests (this file holds no tests itself).

``Strategies(model, generated).for_type(name)`` draws Python values of ``name`` that are
valid for its declared bounds, with strings drawn from arbitrary bytes (decoded
with surrogateescape) so that lossless round trips are exercised.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from hypothesis import strategies as st

from xdrgen.generator.names import field_name, py_name, union_disc_name
from xdrgen.generator.views import View, view_of, view_of_type
from xdrgen.model import (
    UNBOUNDED,
    EnumDef,
    NamedType,
    Primitive,
    StructDef,
    TypedefDef,
    UnionDef,
    XdrModule,
)

#: Keep drawn collections small: the point is shape coverage, not volume.
MAX_ITEMS = 3
MAX_BYTES = 24

_INT_RANGES = {
    (Primitive.INT, None): (-(2**31), 2**31 - 1),
    (Primitive.INT, "char"): (-128, 127),
    (Primitive.INT, "short"): (-(2**15), 2**15 - 1),
    (Primitive.UINT, "unsigned char"): (0, 255),
    (Primitive.UINT, "unsigned short"): (0, 2**16 - 1),
    (Primitive.HYPER, None): (-(2**63), 2**63 - 1),
    (Primitive.UHYPER, None): (0, 2**64 - 1),
    (Primitive.UINT, None): (0, 2**32 - 1),
}


def _int_range(p: Primitive, spelling: str | None) -> tuple[int, int]:
    if (p, spelling) in _INT_RANGES:
        return _INT_RANGES[(p, spelling)]
    return _INT_RANGES[(p, None)]


class Strategies:
    def __init__(self, module: XdrModule, generated: ModuleType) -> None:
        self.module = module
        self.generated = generated
        self.cache: dict[str, st.SearchStrategy[Any]] = {}

    def cls(self, named: NamedType) -> Any:
        return getattr(self.generated, py_name(named.name))

    def for_type(self, name: str) -> st.SearchStrategy[Any]:
        if name not in self.cache:
            self.cache[name] = st.deferred(lambda: self._build(name))
        return self.cache[name]

    def _build(self, name: str) -> st.SearchStrategy[Any]:
        d = self.module.types[name]
        named = NamedType(name, d)
        if isinstance(d, TypedefDef):
            decl = d.declaration
            return self.for_view(view_of(decl.kind, decl.type, decl.size))
        if isinstance(d, EnumDef):
            return st.sampled_from(list(self.cls(named)))
        if isinstance(d, StructDef):
            fields = {}
            for f in d.fields:
                assert f.name is not None
                fields[field_name(f.name)] = self.for_view(
                    view_of(f.kind, f.type, f.size)
                )
            return st.builds(self.cls(named), **fields)
        assert isinstance(d, UnionDef)
        return self._union(d, named)

    def _union(self, d: UnionDef, named: NamedType) -> st.SearchStrategy[Any]:
        cls = self.cls(named)
        disc = union_disc_name(d.discriminant.name or "")
        disc_view = view_of(
            d.discriminant.kind, d.discriminant.type, d.discriminant.size
        )
        options = []

        def make(
            value: Any, arm_strategy: st.SearchStrategy[Any]
        ) -> st.SearchStrategy[Any]:
            return arm_strategy.map(lambda v: cls(**{disc: value, "value": v}))

        labels: set[int] = set()
        for arm in d.arms:
            decl = arm.declaration
            arm_view = view_of(decl.kind, decl.type, decl.size)
            for label in arm.labels:
                labels.add(label.value)
                options.append(
                    make(
                        self.disc_value(disc_view, label.value), self.for_view(arm_view)
                    )
                )
        if d.default is not None:
            others = self.other_discriminants(disc_view, labels)
            dv = view_of(d.default.kind, d.default.type, d.default.size)
            options.append(
                others.flatmap(
                    lambda value: make(
                        self.disc_value(disc_view, value), self.for_view(dv)
                    )
                )
            )
        return st.one_of(options)

    def disc_value(self, view: View, value: int) -> Any:
        if view.kind == "enum":
            assert view.named is not None
            return self.cls(view.named)(value)
        if view.kind == "prim" and view.primitive is Primitive.BOOL:
            return bool(value)
        return value

    def other_discriminants(
        self, view: View, labels: set[int]
    ) -> st.SearchStrategy[int]:
        if view.kind == "enum":
            assert view.named is not None
            values = [int(m) for m in self.cls(view.named) if int(m) not in labels]
            return st.sampled_from(values) if values else st.nothing()
        if view.kind == "prim" and view.primitive is Primitive.BOOL:
            values = [v for v in (0, 1) if v not in labels]
            return st.sampled_from(values) if values else st.nothing()
        assert view.primitive is not None
        lo, hi = _int_range(view.primitive, view.spelling)
        return st.integers(lo, hi).filter(lambda v: v not in labels)

    def for_view(self, view: View) -> st.SearchStrategy[Any]:
        k = view.kind
        if k == "prim":
            p = view.primitive
            assert p is not None
            if p is Primitive.BOOL:
                return st.booleans()
            if p is Primitive.FLOAT:
                return st.floats(width=32, allow_nan=False)
            if p is Primitive.DOUBLE:
                return st.floats(allow_nan=False)
            if p is Primitive.QUADRUPLE:
                return st.binary(min_size=16, max_size=16)
            lo, hi = _int_range(p, view.spelling)
            return st.integers(lo, hi)
        if k in ("enum", "struct", "union"):
            assert view.named is not None
            if view.named.imported_from is not None:
                raise NotImplementedError("imported types")
            return self.for_type(view.named.name)
        if k == "fixed_opaque":
            return st.binary(min_size=view.size, max_size=view.size)
        if k == "var_opaque":
            return st.binary(max_size=min(view.size, MAX_BYTES))
        if k == "string":
            return st.binary(max_size=min(view.size, MAX_BYTES)).map(
                lambda b: b.decode("utf-8", "surrogateescape")
            )
        if k == "void":
            return st.none()
        assert view.element is not None
        elem = self.for_view(view.element)
        if k == "optional":
            return st.none() | elem
        if k == "fixed_array":
            return st.lists(elem, min_size=view.size, max_size=view.size)
        limit = MAX_ITEMS if view.size == UNBOUNDED else min(view.size, MAX_ITEMS)
        return st.lists(elem, max_size=limit)


def view_for_name(module: XdrModule, name: str) -> View:
    return view_of_type(NamedType(name, module.types[name]))


# --------------------------------------------------------------------------
# Generating and importing modules for tests (shared within one pytest process).

import functools  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from xdrgen.frontend import FrontendOptions, load  # noqa: E402
from xdrgen.generator import generate_source  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEMO_X = REPO / "protocols" / "demo.x"
LIBVIRT_H = Path("/usr/include/libvirt/libvirt.h")

_OUT = Path(tempfile.mkdtemp(prefix="xdrgen-test-gen-"))


#: libguestfs's procedure facts (streams, optional arguments) for guestfs_protocol.x.
GUESTFS_ANNOTATIONS = REPO / "protocols" / "annotations" / "guestfs-1.48.toml"


def options_for(source: Path) -> FrontendOptions:
    if source.name == "remote_protocol.x":
        return FrontendOptions(constants_from=(LIBVIRT_H,))
    if source.name == "guestfs_protocol.x":
        return FrontendOptions(annotations=(GUESTFS_ANNOTATIONS,))
    return FrontendOptions()


@functools.cache
def generated_text(source: Path) -> str:
    text, _ = generate_source(source, options=options_for(source))
    return text


@functools.cache
def model_of(source: Path) -> XdrModule:
    return load(source, options_for(source))


@functools.cache
def generated_module(source: Path) -> ModuleType:
    """Generate ``source`` into a temporary directory and import it under a unique name."""
    name = f"_xdrgen_test_{source.stem}"
    path = _OUT / f"{name}.py"
    path.write_text(generated_text(source))
    return import_file(path, name)


def import_file(path: Path, name: str) -> ModuleType:
    """Import the Python file ``path`` as module ``name`` (registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def check_every_type(
    source: Path,
    examples: int,
    check: Any,
    label: str,
    *,
    require_registry: bool = False,
) -> None:
    """Run ``check(codec, value)`` on hypothesis values of every type of ``source``.

    A failure names the type (``label`` says what was being checked).
    """
    from hypothesis import HealthCheck, given, settings

    model = model_of(source)
    module = generated_module(source)
    strategies = Strategies(model, module)
    if require_registry:
        assert set(module.XDR_TYPES) == set(model.types)
    for name in model.types:
        codec = module.XDR_TYPES[name]
        assert codec.name == name

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategies.for_type(name))
        def run(value: Any) -> None:
            check(codec, value)

        try:
            run()
        except Exception as exc:
            raise AssertionError(f"{label} of {name} failed: {exc}") from exc
