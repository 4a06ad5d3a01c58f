"""The codec contract every generated module fulfils, and what its code imports.

``XDR_TYPES[name]`` in a generated module is a :class:`Codec`:

- ``encode(value) -> bytes``
- ``decode(data) -> value``: strict, consumes exactly all of ``data`` or raises
- ``encode_into(buffer, value) -> None``: appends to a ``bytearray``
- ``decode_from(data, offset) -> (value, new_offset)``: may leave trailing bytes
- ``name``: the type's name as written in the .x file

``data`` is any buffer (``bytes``, ``bytearray``, ``memoryview``).  All failures
raise :class:`~xdrgen.runtime.errors.XdrError` subclasses.
"""

from __future__ import annotations

import reprlib
import struct
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from xdrgen.runtime.checks import RunInfo, decode_run_error, run_problem
from xdrgen.runtime.errors import (
    XdrDecodeError,
    XdrDepthError,
    XdrEncodeError,
    XdrError,
    XdrTrailingDataError,
    XdrTruncatedError,
)

T = TypeVar("T")
Buffer = bytes | bytearray | memoryview
EncodeInto = Callable[[bytearray, T], None]
DecodeFrom = Callable[[Buffer, int], tuple[T, int]]

#: ``object.__new__``, typed: generated decoders create instances without calling
#: ``__init__`` and then fill the slots.
new_instance: Callable[[type[T]], T] = object.__new__

StructError = struct.error
U32 = struct.Struct(">I")
I32 = struct.Struct(">i")
#: Padding after an item of length n is ``PAD[n & 3]``.
PAD = (b"", b"\0\0\0", b"\0\0", b"\0")
TRUE_WORD = b"\0\0\0\1"
FALSE_WORD = b"\0\0\0\0"
#: Decoded bool word -> value; anything else is invalid.
BOOL_DECODE: dict[int, bool] = {0: False, 1: True}
#: Encoded bool value -> word value (``True``/``False`` hash like 1/0).
BOOL_ENCODE: dict[object, int] = {0: 0, 1: 1}


#: Lengths up to this get their :class:`LengthFormats` entry cached.
LENGTH_FORMATS_CACHED = 256


class LengthFormats(dict[int, struct.Struct]):
    """``struct.Struct`` for "length word, n bytes, padding, then fixed items", per n.

    A string or variable opaque followed by fixed-size fields then packs or
    unpacks in one call.  Decoding formats read the padding as bytes (to check
    it is zero), encoding formats write zero bytes.  Short lengths are cached
    (bounded: at most ``LENGTH_FORMATS_CACHED + 1`` entries); longer ones are
    built per call, which is cheap next to copying that much data.
    """

    __slots__ = ("tail", "pad")

    def __init__(self, tail: str, *, decode: bool) -> None:
        super().__init__()
        self.tail = tail
        self.pad = "s" if decode else "x"

    def __missing__(self, length: int) -> struct.Struct:
        packer = struct.Struct(f">I{length}s{(-length) & 3}{self.pad}{self.tail}")
        if length <= LENGTH_FORMATS_CACHED:
            self[length] = packer
        return packer


class Invalid(Exception):
    """Raised inside a fused run by a cheap inline test; the run handler explains it."""


class Codec(Generic[T]):
    """Encoder and decoder for one XDR type (see the module docstring)."""

    __slots__ = ("name", "encode", "decode", "encode_into", "decode_from")

    name: str
    encode: Callable[[T], bytes]
    decode: Callable[[Buffer], T]
    encode_into: Callable[[bytearray, T], None]
    decode_from: Callable[[Buffer, int], tuple[T, int]]

    def __init__(
        self,
        name: str,
        encode_into: Callable[[bytearray, T], None],
        decode_from: Callable[[Buffer, int], tuple[T, int]],
        *,
        encode: Callable[[T], bytes] | None = None,
        decode: Callable[[Buffer], T] | None = None,
        recursive: bool = False,
    ) -> None:
        """``encode``/``decode`` may be specialised fast paths; by default they are
        derived from ``encode_into``/``decode_from``.  ``recursive`` types get a guard
        that turns Python's recursion limit into an :class:`XdrDepthError`."""
        self.name = name
        self.encode_into = encode_into
        self.decode_from = _guard_depth(name, decode_from) if recursive else decode_from
        self.encode = encode or _make_encode(name, encode_into)
        self.decode = decode or _make_decode(name, self.decode_from)

    def __repr__(self) -> str:
        return f"<Codec {self.name}>"


def _make_encode(
    name: str, encode_into: Callable[[bytearray, T], None]
) -> Callable[[T], bytes]:
    def encode(value: T) -> bytes:
        buffer = bytearray()
        try:
            encode_into(buffer, value)
        except RecursionError:
            raise XdrEncodeError("value nests too deeply", type_name=name) from None
        return bytes(buffer)

    return encode


def _guard_depth(
    name: str, decode_from: Callable[[Buffer, int], tuple[T, int]]
) -> Callable[[Buffer, int], tuple[T, int]]:
    def guarded(data: Buffer, offset: int = 0) -> tuple[T, int]:
        try:
            return decode_from(data, offset)
        except RecursionError:
            raise XdrDepthError(
                "data nests deeper than the decoder allows (Python recursion limit)",
                type_name=name,
                offset=offset,
            ) from None

    return guarded


def _make_decode(
    name: str, decode_from: Callable[[Buffer, int], tuple[T, int]]
) -> Callable[[Buffer], T]:
    def decode(data: Buffer) -> T:
        value, end = decode_from(data, 0)
        if end != len(data):
            raise XdrTrailingDataError(
                f"{len(data) - end} trailing bytes after the value",
                type_name=name,
                offset=end,
            )
        return value

    return decode


# --------------------------------------------------------------------------
# Error construction for generated code (only ever called on failure).


def fail_encode(type_name: str, path: str, cause: BaseException) -> XdrError:
    """Turn anything raised while encoding ``path`` into an :class:`XdrEncodeError`."""
    if isinstance(cause, XdrError):
        return cause
    if isinstance(cause, RecursionError):
        return XdrEncodeError(
            "value nests too deeply (a cycle?)", type_name=type_name, path=path
        )
    if isinstance(cause, AttributeError):
        return XdrEncodeError(
            f"wrong type of value ({cause})", type_name=type_name, path=path
        )
    if isinstance(cause, UnicodeError):
        return XdrEncodeError(
            f"string cannot be encoded: {cause}", type_name=type_name, path=path
        )
    return XdrEncodeError(f"cannot encode: {cause}", type_name=type_name, path=path)


def fail_decode(
    type_name: str, path: str, cause: BaseException, data: Buffer, offset: int
) -> XdrError:
    """Turn anything raised while decoding ``path`` at ``offset`` into an XdrDecodeError."""
    if isinstance(cause, XdrError):
        return cause
    if isinstance(cause, RecursionError):
        return XdrDepthError(
            "data nests deeper than the decoder allows (Python recursion limit)",
            type_name=type_name,
            path=path,
            offset=offset,
        )
    if isinstance(cause, StructError):
        return XdrTruncatedError(
            f"input ends early ({max(len(data) - offset, 0)} bytes remain)",
            type_name=type_name,
            path=path,
            offset=offset,
        )
    return XdrDecodeError(
        f"cannot decode: {cause!r}", type_name=type_name, path=path, offset=offset
    )


def decode_group_error(
    type_name: str,
    path: str,
    what: str,
    length: int,
    prefix: str,
    info: RunInfo,
    data: Buffer,
    offset: int,
    cause: BaseException,
    next_path: str | None = None,
) -> XdrError:
    """Explain a failed one-call decode of a string/opaque and the fixed items after it.

    Reports what the item-by-item code would have: the bytes past the end, bad
    padding, or (via the run's checks) the fixed item that is wrong.  An array
    element whose unpack also read the next element's length word passes that
    element's ``next_path``: when the element itself is whole and valid, what
    failed was that read, and the error names the next element.
    """
    if isinstance(cause, XdrError):
        return cause
    problem = _group_problem(type_name, path, what, length, prefix, info, data, offset)
    if problem is not None:
        return problem
    end = _padded_end(offset, length) + sum(check.size for check in info.checks)
    if next_path is not None and isinstance(cause, StructError) and end + 4 > len(data):
        return fail_decode(type_name, next_path, cause, data, end)
    return decode_run_error(
        type_name, prefix, info, data, _padded_end(offset, length), cause
    )


def _padded_end(offset: int, length: int) -> int:
    """Where the fixed items after a length word at ``offset`` and its bytes start."""
    return (offset + 4 + length + 3) & -4


def _group_problem(
    type_name: str,
    path: str,
    what: str,
    length: int,
    prefix: str,
    info: RunInfo,
    data: Buffer,
    offset: int,
) -> XdrError | None:
    """What is cut short or invalid in a string/opaque group at ``offset``, if anything."""
    start = offset + 4
    end = start + length
    padded = _padded_end(offset, length)
    if padded > len(data):
        return declared_past_end(
            type_name, path, what, length, padded - start, data, offset
        )
    if bytes(data[end:padded]) != PAD[length & 3]:
        return bad_padding(type_name, path, end)
    return run_problem(type_name, prefix, info, data, padded)


def decode_whole_error(
    type_name: str, info: RunInfo, data: Buffer, size: int, cause: BaseException
) -> XdrError:
    """Explain a failed ``decode`` of a fixed-size value unpacked in one call."""
    if isinstance(cause, XdrError):
        return cause
    if len(data) > size:
        return wrong_size(type_name, data, size)
    # Short data: the run's checks name the field that is cut (as decode_from does).
    return decode_run_error(type_name, "", info, data, 0, cause)


def bytes_size_error(
    type_name: str, path: str, what: str, length: int, data: Buffer
) -> XdrDecodeError:
    """``decode`` of a lone string/opaque whose length word disagrees with the data."""
    padded = (length + 7) & -4
    if padded > len(data):
        return declared_past_end(type_name, path, what, length, padded - 4, data, 0)
    return XdrTrailingDataError(
        f"{len(data) - padded} trailing bytes after the value",
        type_name=type_name,
        offset=padded,
    )


def too_long(
    type_name: str, path: str, what: str, length: int, maximum: int
) -> XdrEncodeError:
    return XdrEncodeError(
        f"{what} length {length} exceeds maximum {maximum}",
        type_name=type_name,
        path=path,
    )


def wrong_length(
    type_name: str, path: str, what: str, length: int, expected: int
) -> XdrEncodeError:
    return XdrEncodeError(
        f"{what} length {length} differs from the fixed length {expected}",
        type_name=type_name,
        path=path,
    )


def declared_too_long(
    type_name: str, path: str, what: str, length: int, maximum: int, offset: int
) -> XdrDecodeError:
    return XdrDecodeError(
        f"{what} length {length} exceeds maximum {maximum}",
        type_name=type_name,
        path=path,
        offset=offset,
    )


def declared_past_end(
    type_name: str,
    path: str,
    what: str,
    length: int,
    need: int,
    data: Buffer,
    offset: int,
) -> XdrTruncatedError:
    """A declared length that the remaining bytes cannot hold (checked before allocating)."""
    remain = max(len(data) - offset - 4, 0)
    return XdrTruncatedError(
        f"{what} length {length} needs at least {need} bytes, {remain} remain",
        type_name=type_name,
        path=path,
        offset=offset,
    )


def too_many_empty(
    type_name: str, path: str, count: int, limit: int, offset: int
) -> XdrDecodeError:
    """More elements that take no bytes (``T x[0]`` items) than the input has bytes.

    rpcgen's C takes any count (its elements are 0 bytes); a Python list of them
    would be sized by the peer's word alone, so decoding takes at most as many as
    the input has bytes (``limit``; docs/compatibility.md, difference 9).
    """
    return XdrDecodeError(
        f"array of {count} elements that take no bytes: more than the {limit} "
        "bytes of the input",
        type_name=type_name,
        path=path,
        offset=offset,
    )


def bad_padding(type_name: str, path: str, offset: int) -> XdrDecodeError:
    return XdrDecodeError(
        "padding bytes are not zero", type_name=type_name, path=path, offset=offset
    )


def bad_optional(type_name: str, path: str, word: int, offset: int) -> XdrDecodeError:
    return XdrDecodeError(
        f"optional-data flag must be 0 or 1, got {word}",
        type_name=type_name,
        path=path,
        offset=offset,
    )


def bad_discriminant_encode(type_name: str, path: str, value: object) -> XdrEncodeError:
    return XdrEncodeError(
        f"discriminant {value!r} selects no arm and there is no default",
        type_name=type_name,
        path=path,
    )


def bad_discriminant_decode(
    type_name: str, path: str, value: int, offset: int
) -> XdrDecodeError:
    return XdrDecodeError(
        f"discriminant {value} selects no arm and there is no default",
        type_name=type_name,
        path=path,
        offset=offset,
    )


def bad_enum_decode(
    type_name: str, path: str, enum: str, value: int, offset: int
) -> XdrDecodeError:
    return XdrDecodeError(
        f"{value} is not a member of enum {enum}",
        type_name=type_name,
        path=path,
        offset=offset,
    )


def bad_enum_encode(
    type_name: str, path: str, enum: str, value: object
) -> XdrEncodeError:
    return XdrEncodeError(
        f"{value!r} is not a member of enum {enum}", type_name=type_name, path=path
    )


# --------------------------------------------------------------------------
# Base classes of generated structs and unions: shared __eq__ / __repr__ keep the
# generated classes small (import time) while __init__ stays specific and typed.


class XdrStruct:
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        names: tuple[str, ...] = self.__slots__
        return all(getattr(self, n) == getattr(other, n) for n in names)

    # A value can hold itself (a cycle the encoder then reports): its repr, which
    # error messages show, writes "..." there instead of recursing without end.
    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{n}={getattr(self, n, '<unset>')!r}" for n in names)
        return f"{type(self).__name__}({fields})"

    __hash__ = None  # type: ignore[assignment]


class XdrUnion(XdrStruct):
    """A discriminated union: the discriminant under its .x name, and ``value``."""

    __slots__ = ()


# --------------------------------------------------------------------------
# Codecs of XDR's built-in types, for procedure tables whose arguments are primitives.


def _fixed_codec(name: str, fmt: str) -> Codec[Any]:
    packer = struct.Struct(fmt)
    size = packer.size

    def encode_into(buffer: bytearray, value: Any) -> None:
        try:
            buffer += packer.pack(value)
        except (struct.error, TypeError, OverflowError) as exc:
            raise XdrEncodeError(
                f"cannot encode {value!r} as {name}: {exc}", type_name=name
            ) from None

    def decode_from(data: Buffer, offset: int) -> tuple[Any, int]:
        try:
            (value,) = packer.unpack_from(data, offset)
        except struct.error:
            raise XdrTruncatedError(
                f"{name} needs {size} bytes", type_name=name, offset=offset
            ) from None
        return value, offset + size

    return Codec(name, encode_into, decode_from)


def _bool_encode(buffer: bytearray, value: object) -> None:
    if value is True or value == 1:
        buffer += TRUE_WORD
    elif value is False or value == 0:
        buffer += FALSE_WORD
    else:
        raise XdrEncodeError(
            f"bool must be True or False, got {value!r}", type_name="bool"
        )


def _bool_decode(data: Buffer, offset: int) -> tuple[bool, int]:
    try:
        (word,) = U32.unpack_from(data, offset)
    except struct.error:
        raise XdrTruncatedError(
            "bool needs 4 bytes", type_name="bool", offset=offset
        ) from None
    if word > 1:
        raise XdrDecodeError(
            f"bool must be 0 or 1, got {word}", type_name="bool", offset=offset
        )
    return word == 1, offset + 4


PRIMITIVE_CODECS: dict[str, Codec[Any]] = {
    "int": _fixed_codec("int", ">i"),
    "unsigned int": _fixed_codec("unsigned int", ">I"),
    "hyper": _fixed_codec("hyper", ">q"),
    "unsigned hyper": _fixed_codec("unsigned hyper", ">Q"),
    "float": _fixed_codec("float", ">f"),
    "double": _fixed_codec("double", ">d"),
    "quadruple": _fixed_codec("quadruple", ">16s"),
    "bool": Codec("bool", _bool_encode, _bool_decode),
}


def _void_encode(buffer: bytearray, value: None) -> None:
    if value is not None:
        raise XdrEncodeError(f"void takes no value, got {value!r}", type_name="void")


def _void_decode(data: Buffer, offset: int) -> tuple[None, int]:
    return None, offset


VOID: Codec[None] = Codec("void", _void_encode, _void_decode)


def index_of(items: Iterable[object], item: object) -> int | str:
    """Index of ``item`` (this very object) in the array being encoded, for error
    paths: encoding is deterministic, so the first occurrence is the failing one."""
    try:
        for index, candidate in enumerate(items):
            if candidate is item:
                return index
    except Exception:
        pass
    return "?"


def index_after(items: Iterable[object], item: object) -> int | str:
    """Index of the element after ``item`` in ``items`` (see :func:`index_of`)."""
    index = index_of(items, item)
    return index + 1 if isinstance(index, int) else index


def cyclic_list(type_name: str, path: str) -> XdrEncodeError:
    """A linked list (``T *next``) whose nodes link back into the list."""
    return XdrEncodeError(
        "the list links back into itself (a cycle)", type_name=type_name, path=path
    )


def chain_path(segment: str, depth: int) -> str:
    """Path of the ``depth``-th node of a linked list through ``segment``."""
    if depth <= 8:
        return ".".join([segment] * depth)
    return f"{segment}*{depth}"


def wrong_size(type_name: str, data: Buffer, size: int) -> XdrDecodeError:
    """``decode`` of a fixed-size type got the wrong number of bytes."""
    if len(data) < size:
        return XdrTruncatedError(
            f"needs {size} bytes, got {len(data)}",
            type_name=type_name,
            offset=len(data),
        )
    return XdrTrailingDataError(
        f"{len(data) - size} trailing bytes after the value",
        type_name=type_name,
        offset=size,
    )


# --------------------------------------------------------------------------
# float32 NaNs: CPython converts float32 through a C double, which quiets a
# signalling NaN (0x7f800001 would come back as 0x7fc00001).  Decoders keep the
# exact bits of every NaN they read; encoders write them back.  Only NaNs pay.

_F32 = struct.Struct(">f")


class Float32Bits(float):
    """A float32 NaN as read from the wire; ``bits`` is its exact 32-bit pattern."""

    bits: int


def float32_nan(data: Buffer, offset: int) -> float:
    """The NaN at ``offset`` (already known to be one), remembering its bits."""
    (bits,) = U32.unpack_from(data, offset)
    (quiet,) = _F32.unpack_from(data, offset)
    value = Float32Bits(quiet)
    value.bits = bits
    return value


def float32_fix(buf: bytearray, offset: int, value: object) -> None:
    """Rewrite the float32 NaN just packed at ``offset`` with its remembered bits."""
    if type(value) is Float32Bits:
        buf[offset : offset + 4] = U32.pack(value.bits)
