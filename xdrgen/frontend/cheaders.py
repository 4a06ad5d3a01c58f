"""Integer constants from C headers: ``#define NAME <integer expression>`` and enum members.

Used for constants a .x file takes from C (libvirt's ``VIR_UUID_BUFLEN``,
``VIR_TYPED_PARAM_*``...). Headers hold arbitrary C, so anything that is not an
integer constant is skipped silently; only a missing header given by the caller is an
error. Conditionals are evaluated as cpp would (undefined macros are 0); an ``#if``
that cannot be evaluated (function-like macros, ``__has_include``...) counts as false.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xdrgen.diagnostics import Position, error
from xdrgen.frontend.preprocessing.cexpr import (
    CInt,
    evaluate_c_expression,
    identifier_is_zero,
)
from xdrgen.frontend.preprocessing.ctokens import CExprError, Token, tokenize_c
from xdrgen.frontend.preprocessing.limits import MAX_FILE_BYTES, MAX_INCLUDE_DEPTH
from xdrgen.frontend.preprocessing.macros import MacroTable, expand_macros

__all__ = ["HeaderConstants", "read_constants"]


@dataclass(frozen=True)
class HeaderConstants:
    values: dict[str, int]
    origins: dict[str, Position]  # where each was defined
    files: tuple[Path, ...]  # every header read


# Comments become spaces (newlines kept, so line numbers stay right); literals are kept
# whole so that a "/*" or a brace inside one means nothing.
_COMMENT_OR_LITERAL_RE = re.compile(
    r"""//[^\n]*|/\*.*?(?:\*/|\Z)|"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?""",
    re.DOTALL,
)
_DIRECTIVE_RE = re.compile(r"[ \t\f\v]*#[ \t\f\v]*([A-Za-z_]+)?(.*)", re.DOTALL)
_DEFINE_RE = re.compile(r"[ \t\f\v]*([A-Za-z_][A-Za-z0-9_]*)(\()?")
_INCLUDE_RE = re.compile(r'\s*(?:"([^"]+)"|<([^>]+)>)')
_ATTRIBUTE_WORDS = frozenset({"__attribute__", "__attribute", "__declspec"})


def _blank_comments(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group()
        if token.startswith(("//", "/*")):
            return re.sub(r"[^\n]", " ", token)
        return token

    return _COMMENT_OR_LITERAL_RE.sub(replace, text)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, text) with backslash-newlines joined onto the first line."""
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield start, " ".join(pending)
        pending = []
    if pending:
        yield start, " ".join(pending)


@dataclass
class _Member:
    """Tokens of one enumerator being collected."""

    tokens: list[Token] = field(default_factory=list)
    line: int = 0


@dataclass
class _EnumScanner:
    """Finds ``enum [tag] { NAME [= expr], ... }`` in a stream of code tokens."""

    state: str = "idle"  # idle | after_enum | after_tag | body
    depth: int = 0
    member: _Member = field(default_factory=_Member)
    next_value: CInt | None = None  # implicit value of the next enumerator


@dataclass
class _Reader:
    include_dirs: tuple[Path, ...]
    macros: MacroTable = field(default_factory=dict)
    define_origins: dict[str, Position] = field(default_factory=dict)
    enum_values: dict[str, CInt] = field(default_factory=dict)
    origins: dict[str, Position] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    seen: set[Path] = field(default_factory=set)

    def read(self, path: Path, depth: int) -> None:
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError):
            return
        if resolved in self.seen or depth > MAX_INCLUDE_DEPTH:
            return  # each header is read once: include guards make that what C does
        try:
            if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
                return
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return
        self.seen.add(resolved)
        self.files.append(path)
        self.scan(path, _blank_comments(text), depth)

    def scan(self, path: Path, text: str, depth: int) -> None:
        display = str(path)
        enums = _EnumScanner()
        groups: list[tuple[bool, bool]] = []  # (active, a branch was taken)
        for number, line in _logical_lines(text):
            active = all(g[0] for g in groups)
            directive = _DIRECTIVE_RE.match(line) if "#" in line else None
            if directive is not None:
                name, body = directive.group(1) or "", directive.group(2)
                where = Position(display, number, directive.start(2) + 1)
                self.directive(path, where, name, body, groups, active, depth)
                continue
            if active:
                for token in tokenize_c(line):
                    self.enum_token(enums, token, display, number)

    def directive(
        self,
        path: Path,
        where: Position,
        name: str,
        body: str,
        groups: list[tuple[bool, bool]],
        active: bool,
        depth: int,
    ) -> None:
        if name in ("if", "ifdef", "ifndef"):
            flag = active and self.condition(name, body)
            groups.append((flag, flag))
        elif name == "elif" and groups:
            _, taken = groups[-1]
            parent = all(g[0] for g in groups[:-1])
            flag = parent and not taken and self.condition("if", body)
            groups[-1] = (flag, taken or flag)
        elif name == "else" and groups:
            _, taken = groups[-1]
            parent = all(g[0] for g in groups[:-1])
            groups[-1] = (parent and not taken, True)
        elif name == "endif" and groups:
            groups.pop()
        elif not active:
            return
        elif name == "define":
            self.define(body, where)
        elif name == "undef":
            tokens = tokenize_c(body)
            if tokens and tokens[0].kind == "id":
                self.macros.pop(tokens[0].text, None)
                self.define_origins.pop(tokens[0].text, None)
        elif name == "include":
            target = self.include_target(path, body)
            if target is not None:
                self.read(target, depth + 1)

    def condition(self, directive: str, body: str) -> bool:
        tokens = tokenize_c(body)
        if directive != "if":
            defined = (
                bool(tokens)
                and tokens[0].kind == "id"
                and tokens[0].text in self.macros
            )
            return defined if directive == "ifdef" else not defined
        try:
            expanded = expand_macros(tokens, self.macros, handle_defined=True)
            return (
                evaluate_c_expression(expanded, identifier_is_zero, pp_mode=True).value
                != 0
            )
        except CExprError:
            return False

    def define(self, body: str, where: Position) -> None:
        """``where`` is the position of ``body``'s first character."""
        match = _DEFINE_RE.match(body)
        if match is None:
            return
        name = match.group(1)
        if match.group(2):  # function-like: only ``defined`` sees it
            self.macros[name] = None
        else:
            self.macros[name] = tokenize_c(body[match.end() :])
        self.define_origins[name] = Position(
            where.file, where.line, where.col + match.start(1)
        )

    def include_target(self, path: Path, body: str) -> Path | None:
        match = _INCLUDE_RE.match(body)
        if match is None:
            return None
        name = match.group(1) or match.group(2)
        here = path.parent
        candidates = [here / name, *(d / name for d in self.include_dirs)]
        # <libvirt/libvirt-host.h> from /usr/include/libvirt/libvirt.h: a sibling named
        # through the parent directory. Other system headers (<stdio.h>) are skipped.
        first, _, rest = name.partition("/")
        if rest and first == here.name:
            candidates.append(here.parent / name)
        return next((c for c in candidates if c.is_file()), None)

    def enum_token(
        self, scan: _EnumScanner, token: Token, display: str, line: int
    ) -> None:
        text = token.text
        if scan.state == "idle":
            if text == "enum":
                scan.state = "after_enum"
            return
        if scan.state in ("after_enum", "after_tag"):
            if text == "{":
                scan.state, scan.depth = "body", 0
                scan.member = _Member()
                scan.next_value = CInt(0, 32, False)
            elif scan.state == "after_enum" and token.kind == "id":
                scan.state = "after_tag"
            else:
                scan.state = "idle"  # ``enum tag name;`` and the like
            return
        if text in ("(", "[", "{"):
            scan.depth += 1
        elif text in (")", "]") or (text == "}" and scan.depth > 0):
            scan.depth = max(scan.depth - 1, 0)
        elif scan.depth == 0 and text in (",", "}"):
            self.enumerator(scan, display)
            scan.member = _Member()
            if text == "}":
                scan.state = "idle"
            return
        if not scan.member.tokens:
            scan.member.line = line
        scan.member.tokens.append(token)

    def enumerator(self, scan: _EnumScanner, display: str) -> None:
        tokens = scan.member.tokens
        if not tokens:
            return  # the trailing comma
        name = tokens[0]
        rest = _skip_attributes(tokens[1:])
        value: CInt | None = None
        if name.kind != "id":
            value = None
        elif not rest:
            value = scan.next_value
        elif rest[0].text == "=" and len(rest) > 1:
            value = self.evaluate(rest[1:])
        if value is None or name.kind != "id":
            scan.next_value = None  # later implicit values are unknown too
            return
        self.enum_values[name.text] = value
        self.origins[name.text] = Position(display, scan.member.line, name.col)
        scan.next_value = _increment(value)

    def evaluate(self, tokens: Sequence[Token]) -> CInt | None:
        try:
            expanded = expand_macros(tokens, self.macros, handle_defined=False)
            return evaluate_c_expression(expanded, self.enum_lookup, pp_mode=False)
        except CExprError:
            return None

    def enum_lookup(self, token: Token) -> CInt:
        value = self.enum_values.get(token.text)
        if value is None:
            raise CExprError(f"'{token.text}' is not an integer constant", token.col)
        return value


def _increment(value: CInt) -> CInt:
    following = value.value + 1
    if value.bits == 32 and not value.unsigned and following >= 1 << 31:
        return CInt(following, 64, False)  # gcc widens the enum's type
    return CInt(following, value.bits, value.unsigned)


def _skip_attributes(tokens: list[Token]) -> list[Token]:
    """Drop ``__attribute__((...))`` and similar annotations after an enumerator name."""
    index = 0
    while index < len(tokens) and tokens[index].text in _ATTRIBUTE_WORDS:
        index += 1
        depth = 0
        while index < len(tokens):
            text = tokens[index].text
            depth += 1 if text == "(" else -1 if text == ")" else 0
            index += 1
            if depth <= 0:
                break
    return tokens[index:]


def read_constants(
    headers: Sequence[Path], *, include_dirs: Sequence[Path] = ()
) -> HeaderConstants:
    """Integer constants defined by ``headers`` and the sibling headers they include."""
    for header in headers:
        if not Path(header).is_file():
            raise error(f"C header '{header}' not found (given with --constants-from)")
    reader = _Reader(tuple(Path(d) for d in include_dirs))
    for header in headers:
        reader.read(Path(header), 0)
    values: dict[str, int] = {}
    origins: dict[str, Position] = {}
    found: list[tuple[Position, str, int]] = []
    for name, member in reader.enum_values.items():
        found.append((reader.origins[name], name, member.value))
    for name, body in reader.macros.items():
        if body is None or name not in reader.define_origins:
            continue
        result = reader.evaluate([Token("id", name, 1)])
        if result is not None:
            found.append((reader.define_origins[name], name, result.value))
    file_order = {str(path): index for index, path in enumerate(reader.files)}
    found.sort(
        key=lambda item: (file_order.get(item[0].file, 0), item[0].line, item[0].col)
    )
    for pos, name, number in found:
        values[name] = number
        origins[name] = pos
    return HeaderConstants(values, origins, tuple(reader.files))
