"""Value checks for XDR items, used to explain a failure precisely.

Generated marshallers fuse runs of fixed-size items into one ``struct`` call and
validate them with cheap inline tests.  When something in a run fails they hand
the run to :func:`encode_run_error` / :func:`decode_run_error`, which walk it
item by item with these checks to say which field was wrong and why.  That keeps
the explanation off the success path.
"""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Mapping, Sequence

from xdrgen.runtime.errors import (
    XdrDecodeError,
    XdrEncodeError,
    XdrError,
    XdrTruncatedError,
)


class Check:
    """How one fixed-size item is validated; ``size`` is its encoded length."""

    __slots__ = ("label", "size")

    def __init__(self, label: str, size: int) -> None:
        self.label = label
        self.size = size

    def encode_problem(self, value: object) -> str | None:
        raise NotImplementedError

    def decode_problem(self, raw: bytes) -> str | None:
        raise NotImplementedError


class IntCheck(Check):
    __slots__ = ("lo", "hi", "signed")

    def __init__(self, label: str, size: int, lo: int, hi: int) -> None:
        super().__init__(label, size)
        self.lo = lo
        self.hi = hi
        self.signed = lo < 0

    def encode_problem(self, value: object) -> str | None:
        if not isinstance(value, int):
            return f"expected int for {self.label}, got {type(value).__name__}"
        if not self.lo <= value <= self.hi:
            return f"value {value} out of range for {self.label} [{self.lo}, {self.hi}]"
        return None

    def decode_problem(self, raw: bytes) -> str | None:
        value = int.from_bytes(raw, "big", signed=self.signed)
        if not self.lo <= value <= self.hi:
            return f"value {value} out of range for {self.label} [{self.lo}, {self.hi}]"
        return None


class FloatCheck(Check):
    __slots__ = ("fmt",)

    def __init__(self, label: str, size: int, fmt: str) -> None:
        super().__init__(label, size)
        self.fmt = fmt

    def encode_problem(self, value: object) -> str | None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"expected float for {self.label}, got {type(value).__name__}"
        try:
            struct.pack(self.fmt, value)
        except (OverflowError, struct.error):
            if math.isfinite(value):
                return f"value {value} too large for {self.label}"
        return None

    def decode_problem(self, raw: bytes) -> str | None:
        return None


class BoolCheck(Check):
    __slots__ = ()

    def encode_problem(self, value: object) -> str | None:
        if (
            value is True
            or value is False
            or (isinstance(value, int) and value in (0, 1))
        ):
            return None
        return f"bool must be True or False (0 or 1), got {value!r}"

    def decode_problem(self, raw: bytes) -> str | None:
        value = int.from_bytes(raw, "big")
        if value > 1:
            return f"bool must be 0 or 1, got {value}"
        return None


class EnumCheck(Check):
    __slots__ = ("members",)

    def __init__(self, label: str, members: Mapping[int, object]) -> None:
        super().__init__(label, 4)
        self.members = members

    def encode_problem(self, value: object) -> str | None:
        if not isinstance(value, int):
            return f"expected {self.label} member, got {type(value).__name__}"
        if value not in self.members:
            return f"{value} is not a member of enum {self.label}"
        return None

    def decode_problem(self, raw: bytes) -> str | None:
        value = int.from_bytes(raw, "big", signed=True)
        if value not in self.members:
            return f"{value} is not a member of enum {self.label}"
        return None


class OpaqueCheck(Check):
    """Fixed-length opaque (and quadruple, carried as its 16 raw bytes)."""

    __slots__ = ("length",)

    def __init__(self, label: str, length: int) -> None:
        super().__init__(label, (length + 3) & ~3)
        self.length = length

    def encode_problem(self, value: object) -> str | None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            return f"expected bytes for {self.label}, got {type(value).__name__}"
        if len(value) != self.length:
            return f"{self.label} needs exactly {self.length} bytes, got {len(value)}"
        return None

    def decode_problem(self, raw: bytes) -> str | None:
        if any(raw[self.length :]):
            return "padding bytes are not zero"
        return None


INT = IntCheck("int", 4, -(2**31), 2**31 - 1)
UINT = IntCheck("unsigned int", 4, 0, 2**32 - 1)
HYPER = IntCheck("hyper", 8, -(2**63), 2**63 - 1)
UHYPER = IntCheck("unsigned hyper", 8, 0, 2**64 - 1)
CHAR = IntCheck("char", 4, -128, 127)
UCHAR = IntCheck("unsigned char", 4, 0, 255)
SHORT = IntCheck("short", 4, -(2**15), 2**15 - 1)
USHORT = IntCheck("unsigned short", 4, 0, 2**16 - 1)
FLOAT = FloatCheck("float", 4, ">f")
DOUBLE = FloatCheck("double", 8, ">d")
BOOL = BoolCheck("bool", 4)
QUADRUPLE = OpaqueCheck("quadruple", 16)


class RunInfo:
    """Static facts about one fused run, for its error handler."""

    # The paths and names stay one string each until an error needs them: a
    # generated module holds thousands of these, and lists would be thousands
    # more objects for every full garbage collection to scan.
    __slots__ = ("_paths", "_names", "checks", "holders")

    def __init__(
        self, paths: str, names: str | None, *checks: Check, holders: bool = False
    ) -> None:
        self._paths = paths
        self._names = names
        self.checks = checks
        #: The run's values come from several objects: the error handler passes a
        #: tuple of them, and each value is its holder's ``names`` attribute (or the
        #: holder itself where the name is empty, e.g. a union's discriminant).
        self.holders = holders

    @property
    def paths(self) -> list[str]:
        """Field paths, relative to the run's dynamic prefix."""
        return self._paths.split(" ")

    @property
    def names(self) -> list[str] | None:
        """Attribute names the values come from, when they are one object's fields.

        Interned: ``getattr`` with a fresh copy of a name would leave that copy in
        CPython's type attribute cache (keyed by the name's address), one more
        held string per error until the cache is full."""
        if self._names is None:
            return None
        return [sys.intern(name) for name in self._names.split(" ")]


def _join(prefix: str, rest: str) -> str:
    if not prefix:
        return rest
    if not rest or rest.startswith("["):
        return prefix + rest
    return f"{prefix}.{rest}"


_MISSING = object()


def encode_run_error(
    type_name: str, prefix: str, info: RunInfo, source: object, cause: BaseException
) -> XdrError:
    """Explain why a fused run of values could not be packed.

    ``source`` is the object whose ``info.names`` attributes were packed, the
    tuple of their holders (``info.holders``), or the tuple of packed values.
    """
    if isinstance(cause, XdrError):
        return cause
    if info.holders:
        # Read here, not in the generated handler: a holder of the wrong type
        # must not raise again while its error is being explained.
        assert isinstance(source, tuple) and info.names is not None
        values: Sequence[object] = [
            getattr(holder, name, _MISSING) if name else holder
            for holder, name in zip(source, info.names)
        ]
    elif info.names is not None:
        values = [getattr(source, n, _MISSING) for n in info.names]
    else:
        assert isinstance(source, tuple)
        values = source
    for rest, value, check in zip(info.paths, values, info.checks):
        path = _join(prefix, rest)
        if value is _MISSING:
            return XdrEncodeError("field is missing", type_name=type_name, path=path)
        problem = check.encode_problem(value)
        if problem is not None:
            return XdrEncodeError(problem, type_name=type_name, path=path)
    return XdrEncodeError(
        f"cannot encode: {cause}",
        type_name=type_name,
        path=_join(prefix, info.paths[0]),
    )


def encode_array_error(
    type_name: str, path: str, values: object, check: Check, cause: BaseException
) -> XdrError:
    """Explain why an array of numbers could not be packed in one call."""
    if isinstance(cause, XdrError):
        return cause
    if isinstance(values, Sequence):
        for index, value in enumerate(values):
            problem = check.encode_problem(value)
            if problem is not None:
                return XdrEncodeError(
                    problem, type_name=type_name, path=f"{path}[{index}]"
                )
    return XdrEncodeError(f"cannot encode: {cause}", type_name=type_name, path=path)


def decode_run_error(
    type_name: str,
    prefix: str,
    info: RunInfo,
    data: bytes | bytearray | memoryview,
    offset: int,
    cause: BaseException,
) -> XdrError:
    """Explain why a fused run of items could not be decoded at ``offset``."""
    if isinstance(cause, XdrError):
        return cause
    problem = run_problem(type_name, prefix, info, data, offset)
    if problem is not None:
        return problem
    return XdrDecodeError(
        f"cannot decode: {cause!r}",
        type_name=type_name,
        path=_join(prefix, info.paths[0]),
        offset=offset,
    )


def run_problem(
    type_name: str,
    prefix: str,
    info: RunInfo,
    data: bytes | bytearray | memoryview,
    offset: int,
) -> XdrError | None:
    """The first item of a fused run at ``offset`` that is cut short or invalid."""
    position = offset
    for rest, check in zip(info.paths, info.checks):
        path = _join(prefix, rest)
        raw = bytes(data[position : position + check.size])
        if len(raw) < check.size:
            return XdrTruncatedError(
                f"{check.label} needs {check.size} bytes, {len(raw)} remain",
                type_name=type_name,
                path=path,
                offset=position,
            )
        problem = check.decode_problem(raw)
        if problem is not None:
            return XdrDecodeError(
                problem, type_name=type_name, path=path, offset=position
            )
        position += check.size
    return None
