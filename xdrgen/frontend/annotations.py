"""libvirt's annotations: ``/** @name: value */`` on procedures, member comments on fields.

Annotations become typed, validated data; an unknown one is a warning with its
position, a malformed value of a known one is an error.
"""

from __future__ import annotations

import re

from xdrgen.diagnostics import Diagnostic, Position, XdrgenError
from xdrgen.model import AclRule, AllocSpec, MemberAnnotations, ProcedureAnnotations

_ANNOTATION = re.compile(r"^\s*(?:\*\s*)?@([A-Za-z_][\w-]*)\s*:\s*(.*?)\s*$")
GENERATE_VALUES = ("both", "server", "client", "none")
PRIORITY_VALUES = ("high", "low")
_FLAG_NAME = re.compile(r"[A-Za-z_]\w*")
_INSERT = re.compile(r"\binsert@(\d+)\b")
_ALLOC = re.compile(r"\balloc@(\d+)@([^@]+)@(\d+)\b")


def _line_position(pos: Position, raw: str, index: int) -> Position:
    """Position of line ``index`` of a comment that starts at ``pos``."""
    if index == 0:
        return pos
    lines = raw.split("\n")
    col = len(lines[index]) - len(lines[index].lstrip()) + 1
    return Position(pos.file, pos.line + index, col)


def parse_procedure_annotations(
    raw: str | None, pos: Position, warnings: list[Diagnostic]
) -> ProcedureAnnotations:
    """Annotations in a ``/** ... */`` comment.  ``pos`` is where the comment starts."""
    if not raw or not raw.startswith("/**"):
        return ProcedureAnnotations()
    values: dict[str, object] = {}
    acl: list[AclRule] = []
    aclfilter: list[AclRule] = []
    for index, line in enumerate(raw.split("\n")):
        text = line.strip()
        if index == 0:
            text = text[3:]
        text = text.removesuffix("*/")
        match = _ANNOTATION.match(text)
        if not match:
            continue
        name, value = match.group(1), match.group(2)
        where = _line_position(pos, raw, index)

        def fail(message: str) -> XdrgenError:
            return XdrgenError(Diagnostic("error", f"annotation @{name}: {message}", where))

        if name == "generate":
            if value not in GENERATE_VALUES:
                raise fail(f"'{value}' is not one of {', '.join(GENERATE_VALUES)}")
            values["generate"] = value
        elif name == "priority":
            if value not in PRIORITY_VALUES:
                raise fail(f"'{value}' is not one of {', '.join(PRIORITY_VALUES)}")
            values["priority"] = value
        elif name in ("acl", "aclfilter"):
            try:
                rule = parse_acl_rule(value)
            except ValueError as exc:
                raise fail(str(exc)) from None
            if rule is not None:
                (acl if name == "acl" else aclfilter).append(rule)
        elif name in ("readstream", "writestream"):
            if not value.isdigit() or int(value) < 1:
                raise fail(f"expected a 1-based argument number, found '{value}'")
            values[name] = int(value)
        elif name == "sparseflag":
            if not _FLAG_NAME.fullmatch(value):
                raise fail(f"expected a flag name, found '{value}'")
            values["sparseflag"] = value
        else:
            warnings.append(Diagnostic("warning", f"unknown annotation '@{name}' (ignored)", where))
    if "readstream" in values and "writestream" in values:
        raise XdrgenError(
            Diagnostic("error", "a procedure cannot have both @readstream and @writestream", pos)
        )
    return ProcedureAnnotations(
        generate=values.get("generate"),  # type: ignore[arg-type]
        priority=values.get("priority"),  # type: ignore[arg-type]
        acl=tuple(acl),
        aclfilter=tuple(aclfilter),
        readstream=values.get("readstream"),  # type: ignore[arg-type]
        writestream=values.get("writestream"),  # type: ignore[arg-type]
        sparseflag=values.get("sparseflag"),  # type: ignore[arg-type]
    )


def parse_acl_rule(value: str) -> AclRule | None:
    """One ``@acl`` / ``@aclfilter`` value (None for ``none``); ValueError says what is wrong."""
    if value == "none":
        return None
    parts = value.split(":")
    if len(parts) == 2 and all(parts):
        return AclRule(parts[0], parts[1])
    if len(parts) == 3 and all(parts):
        return AclRule(parts[0], parts[1], flag=parts[2])
    if len(parts) == 5 and parts[0] and parts[1] and not parts[2] and parts[3] and parts[4]:
        return AclRule(parts[0], parts[1], param=parts[3], value=parts[4])
    raise ValueError(
        f"expected 'object:permission', 'object:permission:flag' or "
        f"'object:permission::param:value', found '{value}'"
    )


def is_flag_name(value: str) -> bool:
    """A C identifier, as ``@sparseflag`` names one."""
    return _FLAG_NAME.fullmatch(value) is not None


def parse_member_annotations(comment: str | None) -> MemberAnnotations:
    """``insert@N``, ``call-by-reference`` and ``alloc@N@type@M`` in a member comment."""
    if not comment:
        return MemberAnnotations()
    insert = _INSERT.search(comment)
    alloc = _ALLOC.search(comment)
    return MemberAnnotations(
        insert=int(insert.group(1)) if insert else None,
        call_by_reference="call-by-reference" in comment,
        alloc=AllocSpec(int(alloc.group(1)), alloc.group(2).strip(), int(alloc.group(3)))
        if alloc
        else None,
    )


def is_member_annotation(comment: str) -> bool:
    annotations = parse_member_annotations(comment)
    return annotations != MemberAnnotations()
