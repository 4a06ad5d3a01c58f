"""The one exception family for bad XDR values and bad XDR bytes.

Errors carry where they happened: the outermost type being encoded or decoded,
the field path inside it (``domains[412].name``) and, for decoding, the byte
offset.  Generated code builds the path only on the way out of a failure (each
non-inlined level prepends its segment), so the success path does no
bookkeeping.
"""

from __future__ import annotations

#: Paths longer than this (deeply nested recursive data) keep only their start.
PATH_MAX = 200


class XdrError(ValueError):
    """A value cannot be encoded, or bytes cannot be decoded."""

    def __init__(
        self,
        problem: str,
        *,
        type_name: str | None = None,
        path: str = "",
        offset: int | None = None,
    ) -> None:
        super().__init__(problem)
        #: What went wrong, without the location.
        self.problem = problem
        #: The outermost type being encoded or decoded (its .x name).
        self.type_name = type_name
        #: Field path inside that type: ``domains[412].name``; empty for the value itself.
        self.path = path
        #: Byte offset of the offending item (decoding), or None.
        self.offset = offset

    def within(self, type_name: str, segment: str) -> XdrError:
        """Record that this happened inside ``segment`` of a ``type_name`` value."""
        if segment:
            if not self.path:
                self.path = segment
            elif self.path.startswith("["):
                self.path = segment + self.path
            else:
                self.path = f"{segment}.{self.path}"
            if len(self.path) > PATH_MAX:
                self.path = self.path[: PATH_MAX - 3] + "..."
        self.type_name = type_name
        return self

    def __str__(self) -> str:
        parts = []
        if self.type_name:
            parts.append(self.type_name)
        if self.path:
            parts.append(self.path)
        where = ": ".join(parts)
        text = f"{where}: {self.problem}" if where else self.problem
        if self.offset is not None:
            text += f" at byte offset {self.offset}"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild,
            (type(self), self.problem, self.type_name, self.path, self.offset),
        )


def _rebuild(
    cls: type[XdrError],
    problem: str,
    type_name: str | None,
    path: str,
    offset: int | None,
) -> XdrError:
    return cls(problem, type_name=type_name, path=path, offset=offset)


class XdrEncodeError(XdrError, TypeError):
    """A Python value does not fit its XDR type (range, length, membership, type)."""


class XdrDecodeError(XdrError):
    """Bytes are not a valid encoding of the XDR type."""


class XdrTruncatedError(XdrDecodeError):
    """The bytes end before the value does."""


class XdrTrailingDataError(XdrDecodeError):
    """``decode`` got more bytes than the value uses."""


class XdrDepthError(XdrDecodeError):
    """Recursive data nests deeper than the decoder allows."""


class XdrEngineMismatch(RuntimeError):
    """The compiled engine refused a value or bytes that the pure-Python code
    accepts: a defect of the engine (``XDRGEN_PURE=1`` avoids it)."""
