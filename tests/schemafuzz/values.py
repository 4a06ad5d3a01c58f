"""Random Python values of generated types, built from the model with ``random.Random``.

These feed the encode-from-values path: ``codec.encode(value)`` on objects the
caller built, not on objects the decoder built.  Values are valid for both
implementations (the same limits as ``xdr_values.Encodings``): integers in the
range of rpcgen's C type, strings without NUL (non-UTF-8 bytes arrive through
``surrogateescape``), lengths within the declared maximum.  Floats are never
NaN, so a decoded value can be compared with ``==``.
"""

from __future__ import annotations

import random
import struct
from types import ModuleType
from typing import Any

from xdr_values import INT_RANGE, NARROW_RANGES, UINT_RANGE
from xdrgen.generator.names import py_name
from xdrgen.generator.views import View, min_size, view_of, view_of_type
from xdrgen.model import (
    UNBOUNDED,
    EnumDef,
    NamedType,
    Primitive,
    StructDef,
    TypeDefinition,
    UnionDef,
    XdrModule,
)

_RANGES = {
    Primitive.INT: INT_RANGE,
    Primitive.UINT: UINT_RANGE,
    Primitive.HYPER: (-(2**63), 2**63 - 1),
    Primitive.UHYPER: (0, 2**64 - 1),
}
_SPECIAL_FLOATS = (0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), 1e-45, 3.4e38)
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


class Values:
    """Random values of the types of one generated module."""

    def __init__(
        self,
        model: XdrModule,
        generated: ModuleType,
        rng: random.Random,
        *,
        max_items: int = 3,
        max_bytes: int = 16,
        max_depth: int = 3,
    ) -> None:
        self.model = model
        self.generated = generated
        self.rng = rng
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    def of(self, type_name: str) -> Any:
        definition = self.model.types[type_name]
        return self._view(view_of_type(NamedType(type_name, definition)), 0)

    # -- by view -----------------------------------------------------------------

    def _view(self, view: View, depth: int) -> Any:
        kind = view.kind
        rng = self.rng
        if kind == "prim":
            return self._primitive(view)
        if kind == "void":
            return None
        if kind in ("enum", "struct", "union"):
            assert view.named is not None
            return self._named(view.named.definition, depth)
        if kind == "fixed_opaque":
            return rng.randbytes(view.size)
        if kind == "var_opaque":
            return rng.randbytes(rng.randint(0, self._limit(view.size, self.max_bytes)))
        if kind == "string":
            return self._string(self._limit(view.size, self.max_bytes))
        assert view.element is not None
        if kind == "optional":
            if depth >= self.max_depth or rng.random() < 0.4:
                return None
            return self._view(view.element, depth + 1)
        if kind == "fixed_array":
            return [self._view(view.element, depth + 1) for _ in range(view.size)]
        assert kind == "var_array", kind
        if depth >= self.max_depth:
            return []
        limit = self._limit(view.size, self.max_items)
        if min_size(view.element) == 0:
            limit = min(limit, 4)  # see xdr_values.Encodings: compatibility.md #9
        count = rng.randint(0, limit)
        return [self._view(view.element, depth + 1) for _ in range(count)]

    def _limit(self, declared: int, cap: int) -> int:
        if declared == UNBOUNDED:
            return cap
        # Small maxima are used whole so that the boundary is exercised.
        return declared if declared <= 4 * cap else cap

    def _primitive(self, view: View) -> Any:
        rng = self.rng
        primitive = view.primitive
        if primitive is Primitive.BOOL:
            return rng.random() < 0.5
        if primitive is Primitive.FLOAT:
            return self._float(_F32)
        if primitive is Primitive.DOUBLE:
            return self._float(_F64)
        assert primitive is not None and primitive in _RANGES, primitive
        low, high = NARROW_RANGES.get(view.spelling or "", _RANGES[primitive])
        roll = rng.random()
        if roll < 0.3:
            return rng.choice((low, high, 0 if low <= 0 else low))
        return rng.randint(low, high)

    def _float(self, packer: struct.Struct) -> float:
        if self.rng.random() < 0.3:
            value: float = self.rng.choice(_SPECIAL_FLOATS)
            # Round to the wire's precision (3.4e38 and 1e-45 are not exact floats).
            return float(packer.unpack(packer.pack(value))[0])
        while True:
            (value,) = packer.unpack(self.rng.randbytes(packer.size))
            if value == value:  # not NaN
                return float(value)

    def _string(self, limit: int) -> str:
        rng = self.rng
        length = rng.randint(0, limit)
        roll = rng.random()
        if roll < 0.5:
            raw = bytes(rng.randint(0x20, 0x7E) for _ in range(length))
        elif roll < 0.75:
            text = "".join(chr(rng.choice((0xE9, 0x4E2D, 0x1F600))) for _ in range(length))
            raw = text.encode()[:length]  # may cut a character: invalid UTF-8 too
        else:
            raw = bytes(rng.randint(1, 255) for _ in range(length))
        return raw.decode("utf-8", "surrogateescape")

    # -- named types ---------------------------------------------------------------

    def _cls(self, definition: TypeDefinition) -> Any:
        return getattr(self.generated, py_name(definition.name))

    def _named(self, definition: TypeDefinition, depth: int) -> Any:
        if isinstance(definition, EnumDef):
            member = self.rng.choice(definition.members)
            return self._cls(definition)(member.value)
        if isinstance(definition, StructDef):
            values = [
                self._view(view_of(f.kind, f.type, f.size), depth)
                for f in definition.fields
            ]
            return self._cls(definition)(*values)
        assert isinstance(definition, UnionDef)
        return self._union(definition, depth)

    def _union(self, union: UnionDef, depth: int) -> Any:
        rng = self.rng
        disc = union.discriminant
        disc_view = view_of(disc.kind, disc.type, disc.size)
        taken = {label.value for arm in union.arms for label in arm.labels}
        choices: list[tuple[int, Any]] = []
        for arm in union.arms:
            label = rng.choice(arm.labels).value
            choices.append((label, arm.declaration))
        if union.default is not None:
            free = self._free_discriminant(disc_view, taken)
            if free is not None:
                choices.append((free, union.default))
        label, declaration = rng.choice(choices)
        arm_value = self._view(
            view_of(declaration.kind, declaration.type, declaration.size), depth + 1
        )
        return self._cls(union)(self._discriminant(disc_view, label), arm_value)

    def _discriminant(self, view: View, value: int) -> Any:
        if view.kind == "enum":
            assert view.named is not None
            return self._cls(view.named.definition)(value)
        if view.primitive is Primitive.BOOL:
            return bool(value)
        return value

    def _free_discriminant(self, view: View, taken: set[int]) -> int | None:
        """A discriminant value no case label takes (for the default arm), or None."""
        if view.kind == "enum":
            assert view.named is not None
            definition = view.named.definition
            assert isinstance(definition, EnumDef)
            free = [m.value for m in definition.members if m.value not in taken]
            return self.rng.choice(free) if free else None
        if view.primitive is Primitive.BOOL:
            bools = [v for v in (0, 1) if v not in taken]
            return self.rng.choice(bools) if bools else None
        low, high = INT_RANGE if view.primitive is Primitive.INT else UINT_RANGE
        while True:
            value = self.rng.choice((self.rng.randint(low, high), self.rng.randint(0, 9)))
            if value not in taken:
                return value
