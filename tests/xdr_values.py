"""Hypothesis strategies for valid XDR encodings, driven by the resolved model.

``Encodings(module).of(type_name)`` draws *bytes*: a canonical RFC 4506 encoding
of some value of that type, built straight from ``xdrgen.model`` definitions.
Differential tests feed these bytes to rpcgen's C and to the generated Python,
so they do not depend on the generated classes' API.

"Valid" here means valid for both implementations: integers in range, enum
values that are members, bool 0/1, union discriminants with an arm (or a value
taken by the default arm), lengths within the declared maximum, zero padding,
strings without NUL (rpcgen's C strings stop there), and float bit patterns
other than signalling NaNs (CPython's float conversion quiets them; see
docs/compatibility.md).  ``mutations`` derives hostile variants of an encoding.

Sizes stay small so that hundreds of types can be exercised quickly: variable
lengths are capped by ``max_items`` / ``max_bytes`` (a small declared maximum is
used whole, so boundaries get tested), and recursion through optional data,
variable arrays and unions stops at ``max_depth``, after which the shortest
valid encoding is used.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hypothesis import strategies as st

from xdrgen.model import (
    UNBOUNDED,
    Declaration,
    DeclKind,
    EnumDef,
    NamedType,
    Primitive,
    PrimitiveType,
    StructDef,
    TypedefDef,
    TypeDefinition,
    TypeRef,
    UnionDef,
    XdrModule,
)

Bytes = st.SearchStrategy[bytes]

_INT = struct.Struct(">i")
_UINT = struct.Struct(">I")
_HYPER = struct.Struct(">q")
_UHYPER = struct.Struct(">Q")

INT_RANGE = (-(2**31), 2**31 - 1)
UINT_RANGE = (0, 2**32 - 1)


def pad(data: bytes) -> bytes:
    """``data`` followed by zero padding to a multiple of four."""
    return data + bytes(-len(data) % 4)


def encode_uint(value: int) -> bytes:
    return _UINT.pack(value)


def is_signalling_nan32(word: bytes) -> bool:
    """A float bit pattern that CPython cannot carry through ``float`` unchanged."""
    (bits,) = _UINT.unpack(word)
    return (
        (bits & 0x7F800000) == 0x7F800000
        and (bits & 0x007FFFFF) != 0
        and not bits & 0x400000
    )


#: rpcgen's narrow C types: 4 bytes on the wire, but its C truncates to the
#: C width on decode, so only values in that range survive a round trip.
NARROW_RANGES: dict[str, tuple[int, int]] = {
    "char": (-(2**7), 2**7 - 1),
    "int8_t": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "int16_t": (-(2**15), 2**15 - 1),
    "unsigned char": (0, 2**8 - 1),
    "u_char": (0, 2**8 - 1),
    "uint8_t": (0, 2**8 - 1),
    "unsigned short": (0, 2**16 - 1),
    "u_short": (0, 2**16 - 1),
    "uint16_t": (0, 2**16 - 1),
}


def _primitive_type(ref: PrimitiveType) -> Bytes:
    narrow = NARROW_RANGES.get(ref.spelling or "")
    if narrow is not None:
        return st.integers(*narrow).map(_INT.pack if narrow[0] < 0 else _UINT.pack)
    return _primitive(ref.primitive)


def _primitive(primitive: Primitive) -> Bytes:
    if primitive is Primitive.INT:
        return st.integers(*INT_RANGE).map(_INT.pack)
    if primitive is Primitive.UINT:
        return st.integers(*UINT_RANGE).map(_UINT.pack)
    if primitive is Primitive.HYPER:
        return st.integers(-(2**63), 2**63 - 1).map(_HYPER.pack)
    if primitive is Primitive.UHYPER:
        return st.integers(0, 2**64 - 1).map(_UHYPER.pack)
    if primitive is Primitive.BOOL:
        return st.sampled_from((b"\0\0\0\0", b"\0\0\0\1"))
    if primitive is Primitive.FLOAT:
        return st.binary(min_size=4, max_size=4).filter(
            lambda w: not is_signalling_nan32(w)
        )
    if primitive is Primitive.DOUBLE:
        return st.binary(min_size=8, max_size=8)
    if primitive is Primitive.QUADRUPLE:
        return st.binary(min_size=16, max_size=16)
    raise AssertionError(primitive)


_PRIMITIVE_SIZE = {
    Primitive.INT: 4,
    Primitive.UINT: 4,
    Primitive.BOOL: 4,
    Primitive.FLOAT: 4,
    Primitive.HYPER: 8,
    Primitive.UHYPER: 8,
    Primitive.DOUBLE: 8,
    Primitive.QUADRUPLE: 16,
}


@dataclass(frozen=True, slots=True)
class Discriminant:
    """What a union's discriminant can hold: a primitive range or enum members."""

    values: tuple[int, ...] | None  # enum / bool members; None for int ranges
    signed: bool
    #: A bool (rpcgen reads any nonzero word as TRUE); an enum of 0 and 1 is not one.
    is_bool: bool = False

    def encode(self, value: int) -> bytes:
        return (_INT if self.signed else _UINT).pack(value)

    def others(self, taken: set[int]) -> st.SearchStrategy[int] | None:
        """Values of this discriminant that no case label takes (for the default arm)."""
        if self.values is not None:
            free = [value for value in self.values if value not in taken]
            return st.sampled_from(free) if free else None
        low, high = INT_RANGE if self.signed else UINT_RANGE
        return st.integers(low, high).filter(lambda value: value not in taken)


def discriminant_of(ref: TypeRef) -> Discriminant:
    """The value set of a union discriminant type (int, unsigned, bool, enum, typedefs)."""
    while True:
        if isinstance(ref, PrimitiveType):
            if ref.primitive is Primitive.BOOL:
                return Discriminant((0, 1), signed=True, is_bool=True)
            if ref.primitive is Primitive.INT:
                return Discriminant(None, signed=True)
            if ref.primitive is Primitive.UINT:
                return Discriminant(None, signed=False)
            raise ValueError(f"{ref.primitive.value} cannot be a union discriminant")
        definition = ref.definition
        if isinstance(definition, EnumDef):
            return Discriminant(
                tuple(member.value for member in definition.members), signed=True
            )
        if (
            isinstance(definition, TypedefDef)
            and definition.declaration.kind is DeclKind.PLAIN
        ):
            inner = definition.declaration.type
            assert inner is not None
            ref = inner
            continue
        raise ValueError(f"{ref.name} cannot be a union discriminant")


class Encodings:
    """Strategies of valid encodings for the types of one resolved module."""

    def __init__(
        self,
        module: XdrModule,
        *,
        max_items: int = 3,
        max_bytes: int = 16,
        max_depth: int = 3,
        max_fixed_random: int = 64,
    ) -> None:
        self.module = module
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        #: Fixed-length opaque/arrays longer than this get a random prefix and zeros.
        self.max_fixed_random = max_fixed_random
        self._named: dict[tuple[str, int], Bytes] = {}
        self._minimal: dict[str, bytes] = {}

    # -- public ------------------------------------------------------------

    def of(self, type_name: str) -> Bytes:
        """Valid encodings of the named type (typedef, struct, union or enum)."""
        return self._definition(self._lookup(type_name), 0)

    def minimal(self, type_name: str) -> bytes:
        """The shortest valid encoding of the named type."""
        result = self._minimal_definition(self._lookup(type_name), frozenset())
        if result is None:
            raise ValueError(f"{type_name} has no finite encoding")
        return result

    # -- strategies ----------------------------------------------------------

    def _lookup(self, name: str) -> TypeDefinition:
        if name in self.module.types:
            return self.module.types[name]
        for imported in self.module.imports:
            if name in imported.model.types:
                return imported.model.types[name]
        raise KeyError(name)

    def _limit(self, declared: int | None, cap: int) -> int:
        if declared is None or declared == UNBOUNDED:
            return cap
        # Small maxima are used whole so that the boundary is exercised.
        return declared if declared <= 4 * cap else cap

    def _ref(self, ref: TypeRef, depth: int) -> Bytes:
        if isinstance(ref, PrimitiveType):
            return _primitive_type(ref)
        return self._definition(ref.definition, depth)

    def _definition(self, definition: TypeDefinition, depth: int) -> Bytes:
        key = (definition.name, depth)
        cached = self._named.get(key)
        if cached is None:
            # deferred: recursive types refer to themselves while being built.
            cached = st.deferred(lambda: self._build(definition, depth))
            self._named[key] = cached
        return cached

    def _build(self, definition: TypeDefinition, depth: int) -> Bytes:
        if isinstance(definition, EnumDef):
            values = [member.value for member in definition.members]
            return st.sampled_from(values).map(_INT.pack)
        if isinstance(definition, TypedefDef):
            return self._declaration(definition.declaration, depth)
        if isinstance(definition, StructDef):
            parts = [self._declaration(field, depth) for field in definition.fields]
            return st.tuples(*parts).map(b"".join)
        return self._union(definition, depth)

    def _union(self, union: UnionDef, depth: int) -> Bytes:
        assert union.discriminant.type is not None
        discriminant = discriminant_of(union.discriminant.type)
        taken = {label.value for arm in union.arms for label in arm.labels}
        if depth >= self.max_depth:
            fallback = self._minimal_definition(union, frozenset())
            if fallback is not None:
                return st.just(fallback)
        choices: list[Bytes] = []
        for arm in union.arms:
            body = self._declaration(arm.declaration, depth + 1)
            labels = st.sampled_from(
                [discriminant.encode(label.value) for label in arm.labels]
            )
            choices.append(st.tuples(labels, body).map(b"".join))
        if union.default is not None:
            others = discriminant.others(taken)
            if others is not None:
                body = self._declaration(union.default, depth + 1)
                choices.append(
                    st.tuples(others.map(discriminant.encode), body).map(b"".join)
                )
        if not choices:
            raise ValueError(f"union {union.name} has no arm that a value can take")
        return st.one_of(choices)

    def _declaration(self, decl: Declaration, depth: int) -> Bytes:
        kind = decl.kind
        if kind is DeclKind.VOID:
            return st.just(b"")
        if kind is DeclKind.PLAIN:
            assert decl.type is not None
            return self._ref(decl.type, depth)
        if kind is DeclKind.FIXED_OPAQUE:
            assert decl.size is not None
            return self._fixed_opaque(decl.size)
        if kind is DeclKind.VAR_OPAQUE:
            limit = self._limit(decl.size, self.max_bytes)
            return st.binary(max_size=limit).map(
                lambda data: encode_uint(len(data)) + pad(data)
            )
        if kind is DeclKind.STRING:
            limit = self._limit(decl.size, self.max_bytes)
            return _c_strings(limit).map(
                lambda data: encode_uint(len(data)) + pad(data)
            )
        assert decl.type is not None
        element_type = decl.type
        if kind is DeclKind.FIXED_ARRAY:
            assert decl.size is not None
            return self._fixed_array(element_type, decl.size, depth)
        if kind is DeclKind.VAR_ARRAY:
            if depth >= self.max_depth:
                return st.just(encode_uint(0))
            limit = self._limit(decl.size, self.max_items)
            if self._minimal_ref(element_type, frozenset()) == b"":
                # Elements of no bytes: at most as many as the count word has bytes
                # (more than the input's bytes is docs/compatibility.md difference 9).
                limit = min(limit, 4)
            element = self._ref(element_type, depth + 1)
            return st.lists(element, max_size=limit).map(
                lambda items: encode_uint(len(items)) + b"".join(items)
            )
        if kind is DeclKind.OPTIONAL:
            absent = st.just(encode_uint(0))
            if depth >= self.max_depth:
                return absent
            present = self._ref(element_type, depth + 1).map(
                lambda body: encode_uint(1) + body
            )
            return st.one_of(absent, present)
        raise AssertionError(kind)

    def _fixed_opaque(self, size: int) -> Bytes:
        if size <= self.max_fixed_random:
            return st.binary(min_size=size, max_size=size).map(pad)
        head = st.binary(min_size=self.max_fixed_random, max_size=self.max_fixed_random)
        return head.map(lambda data: pad(data + bytes(size - len(data))))

    def _fixed_array(self, element_type: TypeRef, size: int, depth: int) -> Bytes:
        element = self._ref(element_type, depth)
        count = min(size, self.max_items * 4)
        filler = b""
        if count < size:
            minimal = self._minimal_ref(element_type, frozenset())
            if minimal is None:
                raise ValueError("fixed array of a type without a finite encoding")
            filler = minimal * (size - count)
        return st.lists(element, min_size=count, max_size=count).map(
            lambda items: b"".join(items) + filler
        )

    # -- shortest encodings (used past max_depth and for long fixed arrays) ----

    def _minimal_ref(self, ref: TypeRef, visiting: frozenset[str]) -> bytes | None:
        if isinstance(ref, PrimitiveType):
            return bytes(_PRIMITIVE_SIZE[ref.primitive])
        return self._minimal_definition(ref.definition, visiting)

    def _minimal_definition(
        self, definition: TypeDefinition, visiting: frozenset[str]
    ) -> bytes | None:
        cached = self._minimal.get(definition.name)
        if cached is not None:
            return cached
        if definition.name in visiting:
            return None  # a cycle through required data: this path never ends
        visiting = visiting | {definition.name}
        result: bytes | None
        if isinstance(definition, EnumDef):
            result = _INT.pack(definition.members[0].value)
        elif isinstance(definition, TypedefDef):
            result = self._minimal_declaration(definition.declaration, visiting)
        elif isinstance(definition, StructDef):
            parts = [
                self._minimal_declaration(field, visiting)
                for field in definition.fields
            ]
            result = (
                None
                if any(part is None for part in parts)
                else b"".join(part for part in parts if part is not None)
            )
        else:
            result = self._minimal_union(definition, visiting)
        if result is not None:
            self._minimal[definition.name] = result
        return result

    def _minimal_union(self, union: UnionDef, visiting: frozenset[str]) -> bytes | None:
        assert union.discriminant.type is not None
        discriminant = discriminant_of(union.discriminant.type)
        candidates: list[bytes] = []
        for arm in union.arms:
            body = self._minimal_declaration(arm.declaration, visiting)
            if body is not None and arm.labels:
                candidates.append(discriminant.encode(arm.labels[0].value) + body)
        if union.default is not None:
            taken = {label.value for arm in union.arms for label in arm.labels}
            free = _first_free(discriminant, taken)
            body = self._minimal_declaration(union.default, visiting)
            if free is not None and body is not None:
                candidates.append(discriminant.encode(free) + body)
        return min(candidates, key=len) if candidates else None

    def _minimal_declaration(
        self, decl: Declaration, visiting: frozenset[str]
    ) -> bytes | None:
        kind = decl.kind
        if kind is DeclKind.VOID:
            return b""
        if kind in (
            DeclKind.VAR_ARRAY,
            DeclKind.VAR_OPAQUE,
            DeclKind.STRING,
            DeclKind.OPTIONAL,
        ):
            return encode_uint(0)
        if kind is DeclKind.FIXED_OPAQUE:
            assert decl.size is not None
            return pad(bytes(decl.size))
        assert decl.type is not None
        element = self._minimal_ref(decl.type, visiting)
        if element is None:
            return None
        if kind is DeclKind.FIXED_ARRAY:
            assert decl.size is not None
            return element * decl.size
        return element  # PLAIN


def _first_free(discriminant: Discriminant, taken: set[int]) -> int | None:
    if discriminant.values is not None:
        return next(
            (value for value in discriminant.values if value not in taken), None
        )
    value = 0
    while value in taken:
        value += 1
    return value


def _c_strings(limit: int) -> Bytes:
    """Byte strings rpcgen's ``char *`` can hold: anything but NUL, mostly printable."""
    printable = st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=limit
    ).map(str.encode)
    raw = st.lists(st.integers(1, 255), max_size=limit).map(bytes)
    utf8 = st.text(
        st.characters(blacklist_characters="\0", blacklist_categories=["Cs"]),
        max_size=limit,
    )
    # Cutting at the limit may split a character: invalid UTF-8 is fair game too.
    utf8_bytes = utf8.map(lambda text: text.encode()[:limit])
    return st.one_of(printable, raw, utf8_bytes)


# --------------------------------------------------------------------------
# Hostile variants of valid encodings.

#: Words that stand in for a length or count: boundaries and absurd sizes.
HOSTILE_WORDS = (
    0xFFFFFFFF,
    0xFFFFFFFE,
    0x80000000,
    0x7FFFFFFF,
    0x40000000,
    0x00100000,
    0x00000002,
    0x00000001,
)


def _flip(data: bytes, position: int, mask: int) -> bytes:
    index = position % len(data)
    changed = bytearray(data)
    changed[index] ^= mask or 1
    return bytes(changed)


def _set_word(data: bytes, position: int, word: int) -> bytes:
    words = len(data) // 4
    index = (position % words) * 4
    return data[:index] + encode_uint(word) + data[index + 4 :]


@st.composite
def _mutated(draw: st.DrawFn, valid: Bytes) -> bytes:
    data = draw(valid)
    choice = draw(
        st.sampled_from(("truncate", "extend", "flip", "word", "word+truncate"))
    )
    position = draw(st.integers(0, max(len(data), 1) * 4))
    if not data:
        return draw(st.binary(min_size=1, max_size=8))
    if choice == "truncate":
        return data[: position % len(data)]
    if choice == "extend":
        return data + draw(st.binary(min_size=1, max_size=8))
    if choice == "flip":
        return _flip(data, position, draw(st.integers(0, 255)))
    if len(data) < 4:
        return data[:-1]
    changed = _set_word(data, position, draw(st.sampled_from(HOSTILE_WORDS)))
    return changed[: len(changed) - 4] if choice == "word+truncate" else changed


def mutations(valid: Bytes) -> Bytes:
    """Damaged versions of valid encodings: truncated, extended, flipped, huge lengths."""
    return _mutated(valid)


# --------------------------------------------------------------------------
# Classifying arbitrary bytes: what rpcgen's C (libtirpc) does with them, and
# where they stray from the canonical encoding our strict decoder demands.


class Deviation:
    """Ways an input rpcgen accepts can differ from a canonical encoding."""

    TRAILING = "trailing bytes after the value"  # rpcgen ignores them
    PADDING = "nonzero padding"  # rpcgen skips padding unread
    BOOL = "bool other than 0/1"  # rpcgen: any nonzero is TRUE
    OPTIONAL = "optional-data flag other than 0/1"  # rpcgen: any nonzero is present
    ENUM = "enum value that is not a member"  # rpcgen: any int
    NARROW = "out of range for rpcgen's char/short"  # rpcgen truncates to the C width
    STRING_NUL = "NUL inside a string"  # rpcgen's char * ends there
    SIGNALLING_NAN = "float signalling NaN"  # CPython quiets it
    #: rpcgen takes any count of elements of no bytes (T x[0]); we refuse more than
    #: the input has bytes, so that the list stays sized by what was sent.
    EMPTY_ELEMENTS = "more elements of no bytes than input bytes"


@dataclass
class Scan:
    """The outcome of reading bytes the way rpcgen's C does."""

    #: False when rpcgen's decoder returns FALSE (truncation, length over maximum,
    #: discriminant without an arm).
    accepted: bool
    consumed: int
    deviations: list[tuple[str, int]]

    @property
    def canonical(self) -> bool:
        return self.accepted and not self.deviations


class _Rejected(Exception):
    pass


class Scanner:
    """Reads an input as rpcgen's generated C with libtirpc would, noting deviations."""

    def __init__(self, module: XdrModule) -> None:
        self._encodings = Encodings(module)

    def scan(self, type_name: str, data: bytes) -> Scan:
        deviations: list[tuple[str, int]] = []
        self._data = data
        self._deviations = deviations
        try:
            end = self._definition(self._encodings._lookup(type_name), 0)
        except _Rejected:
            return Scan(False, 0, deviations)
        if end < len(data):
            deviations.append((Deviation.TRAILING, end))
        return Scan(True, end, deviations)

    def _take(self, offset: int, size: int) -> bytes:
        if offset + size > len(self._data):
            raise _Rejected
        return self._data[offset : offset + size]

    def _word(self, offset: int) -> int:
        value: int = _UINT.unpack(self._take(offset, 4))[0]
        return value

    def _padding(self, offset: int, size: int) -> int:
        end = offset + size
        padding = -size % 4
        if any(self._take(end, padding)):
            self._deviations.append((Deviation.PADDING, end))
        return end + padding

    def _ref(self, ref: TypeRef, offset: int) -> int:
        if isinstance(ref, NamedType):
            return self._definition(ref.definition, offset)
        primitive = ref.primitive
        if primitive is Primitive.BOOL:
            if self._word(offset) > 1:
                self._deviations.append((Deviation.BOOL, offset))
            return offset + 4
        if primitive is Primitive.FLOAT:
            if is_signalling_nan32(self._take(offset, 4)):
                self._deviations.append((Deviation.SIGNALLING_NAN, offset))
            return offset + 4
        narrow = NARROW_RANGES.get(ref.spelling or "")
        if narrow is not None:
            word = self._word(offset)
            value = word - (1 << 32) if narrow[0] < 0 and word >= 1 << 31 else word
            if not narrow[0] <= value <= narrow[1]:
                self._deviations.append((Deviation.NARROW, offset))
            return offset + 4
        size = _PRIMITIVE_SIZE[primitive]
        self._take(offset, size)
        return offset + size

    def _definition(self, definition: TypeDefinition, offset: int) -> int:
        if isinstance(definition, EnumDef):
            (value,) = _INT.unpack(self._take(offset, 4))
            if value not in {member.value for member in definition.members}:
                self._deviations.append((Deviation.ENUM, offset))
            return offset + 4
        if isinstance(definition, TypedefDef):
            return self._declaration(definition.declaration, offset)
        if isinstance(definition, StructDef):
            for field in definition.fields:
                offset = self._declaration(field, offset)
            return offset
        return self._union(definition, offset)

    def _union(self, union: UnionDef, offset: int) -> int:
        assert union.discriminant.type is not None
        discriminant = discriminant_of(union.discriminant.type)
        start = offset
        word = self._word(offset)
        value = word - (1 << 32) if discriminant.signed and word >= 1 << 31 else word
        offset += 4
        if discriminant.values is not None and value not in discriminant.values:
            kind = Deviation.BOOL if discriminant.is_bool else Deviation.ENUM
            self._deviations.append((kind, start))
            if kind is Deviation.BOOL:
                value = 1  # rpcgen's bool_t reads any nonzero as TRUE
        for arm in union.arms:
            if any(label.value == value for label in arm.labels):
                return self._declaration(arm.declaration, offset)
        if union.default is None:
            raise _Rejected
        return self._declaration(union.default, offset)

    def _declaration(self, decl: Declaration, offset: int) -> int:
        kind = decl.kind
        if kind is DeclKind.VOID:
            return offset
        if kind is DeclKind.PLAIN:
            assert decl.type is not None
            return self._ref(decl.type, offset)
        if kind is DeclKind.FIXED_OPAQUE:
            assert decl.size is not None
            self._take(offset, decl.size)
            return self._padding(offset, decl.size)
        if kind in (DeclKind.VAR_OPAQUE, DeclKind.STRING):
            assert decl.size is not None
            length = self._word(offset)
            if length > decl.size:
                raise _Rejected
            body = self._take(offset + 4, length)
            if kind is DeclKind.STRING and 0 in body:
                self._deviations.append((Deviation.STRING_NUL, offset))
            return self._padding(offset + 4, length)
        assert decl.type is not None
        if kind is DeclKind.FIXED_ARRAY:
            assert decl.size is not None
            for _ in range(decl.size):
                offset = self._ref(decl.type, offset)
            return offset
        if kind is DeclKind.VAR_ARRAY:
            assert decl.size is not None
            count = self._word(offset)
            empty = self._encodings._minimal_ref(decl.type, frozenset()) == b""
            if count > decl.size or (count > len(self._data) and not empty):
                # libtirpc allocates count elements first: hostile counts fail on
                # allocation or on running out of bytes; either way FALSE.
                raise _Rejected
            if empty and count > len(self._data):
                self._deviations.append((Deviation.EMPTY_ELEMENTS, offset))
            offset += 4
            for _ in range(0 if empty else count):  # no bytes to read for empty ones
                offset = self._ref(decl.type, offset)
            return offset
        if kind is DeclKind.OPTIONAL:
            flag = self._word(offset)
            if flag > 1:
                self._deviations.append((Deviation.OPTIONAL, offset))
            offset += 4
            return self._ref(decl.type, offset) if flag else offset
        raise AssertionError(kind)
