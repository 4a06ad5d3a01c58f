"""Where each key and value of a TOML document is written.

``tomllib`` parses TOML into plain values and keeps no positions, but a
diagnostic about an annotation file must say ``file:line:col``.  This scanner
walks a document that ``tomllib`` has already accepted (so it can assume valid
TOML) and records, for every key path, where its key and its value start.
Array items get the path of their array plus their index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdrgen.diagnostics import Position

#: A path into the parsed document: table keys, and list indexes for arrays.
KeyPath = tuple[str | int, ...]

_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\", "e": "\x1b"}
#: Characters that end a scalar value (number, boolean, date).
_SCALAR_END = frozenset(",]}#\n\r")


@dataclass
class TomlPositions:
    """Key and value positions of one document (1-based lines and columns)."""

    file: str
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    values: dict[KeyPath, Position] = field(default_factory=dict)

    def key(self, path: KeyPath) -> Position:
        """Where the key at ``path`` (or its nearest written ancestor) is."""
        return self._nearest(self.keys, path)

    def value(self, path: KeyPath) -> Position:
        """Where the value at ``path`` starts (falls back to its key)."""
        if path in self.values:
            return self.values[path]
        return self.key(path)

    def _nearest(self, table: dict[KeyPath, Position], path: KeyPath) -> Position:
        while path:
            if path in table:
                return table[path]
            path = path[:-1]
        return Position(self.file, 1, 1)


def scan(text: str, file: str) -> TomlPositions:
    """Positions of every key and value in ``text`` (which must be valid TOML)."""
    return _Scanner(text, file).run()


class _Scanner:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        self.line_start = 0
        self.out = TomlPositions(file)
        #: Next index of each array of tables (``[[name]]``).
        self.table_arrays: dict[KeyPath, int] = {}

    # ------------------------------------------------------------- cursor

    def pos(self) -> Position:
        return Position(self.out.file, self.line, self.i - self.line_start + 1)

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.text[j] if j < len(self.text) else ""

    def advance(self, count: int = 1) -> None:
        for _ in range(count):
            if self.i >= len(self.text):
                return
            if self.text[self.i] == "\n":
                self.line += 1
                self.line_start = self.i + 1
            self.i += 1

    def skip_blank(self, newlines: bool) -> None:
        """Skip spaces and tabs (and comments and newlines when ``newlines``)."""
        while self.i < len(self.text):
            c = self.text[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.advance()
            elif c == "#":
                while self.i < len(self.text) and self.text[self.i] != "\n":
                    self.advance()
            else:
                return

    # ------------------------------------------------------------ document

    def run(self) -> TomlPositions:
        current: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.i >= len(self.text):
                return self.out
            if self.text.startswith("[[", self.i):
                self.advance(2)
                path = self.dotted_key(())
                self.skip_blank(newlines=False)
                self.advance(2)  # ]]
                index = self.table_arrays.get(path, 0)
                self.table_arrays[path] = index + 1
                current = path + (index,)
                self.out.keys.setdefault(current, self.out.keys[path])
            elif self.peek() == "[":
                self.advance()
                current = self.dotted_key(())
                self.skip_blank(newlines=False)
                self.advance()  # ]
            else:
                self.key_value(current)

    def key_value(self, table: KeyPath) -> None:
        path = self.dotted_key(table)
        self.skip_blank(newlines=False)
        self.advance()  # =
        self.skip_blank(newlines=False)
        self.value(path)

    def dotted_key(self, prefix: KeyPath) -> KeyPath:
        path = prefix
        while True:
            self.skip_blank(newlines=False)
            where = self.pos()
            path = path + (self.simple_key(),)
            self.out.keys.setdefault(path, where)
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return path
            self.advance()

    def simple_key(self) -> str:
        c = self.peek()
        if c == '"':
            return self.basic_string()
        if c == "'":
            return self.literal_string()
        start = self.i
        while self.peek() and self.peek() in _BARE_KEY:
            self.advance()
        return self.text[start : self.i]

    # -------------------------------------------------------------- values

    def value(self, path: KeyPath) -> None:
        self.out.values.setdefault(path, self.pos())
        c = self.peek()
        if c == '"':
            self.basic_string()
        elif c == "'":
            self.literal_string()
        elif c == "[":
            self.array(path)
        elif c == "{":
            self.inline_table(path)
        else:
            while self.peek() and self.peek() not in _SCALAR_END:
                self.advance()

    def array(self, path: KeyPath) -> None:
        self.advance()  # [
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "]" or not self.peek():
                self.advance()
                return
            self.value(path + (index,))
            index += 1
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.advance()

    def inline_table(self, path: KeyPath) -> None:
        self.advance()  # {
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "}" or not self.peek():
                self.advance()
                return
            self.key_value(path)
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.advance()

    def basic_string(self) -> str:
        if self.text.startswith('"""', self.i):
            self.advance(3)
            end = self.text.find('"""', self.i)
            while end != -1 and self.text.startswith('""""', end):
                end += 1  # up to two quotes may end the content
            end = len(self.text) if end == -1 else end
            raw = self.text[self.i : end]
            self.advance(end + 3 - self.i)
            return raw
        self.advance()  # "
        chars: list[str] = []
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == '"':
                self.advance()
                break
            if c == "\\":
                chars.append(self.escape())
                continue
            chars.append(c)
            self.advance()
        return "".join(chars)

    def escape(self) -> str:
        self.advance()  # backslash
        c = self.peek()
        if c in ("u", "U"):
            width = 4 if c == "u" else 8
            digits = self.text[self.i + 1 : self.i + 1 + width]
            self.advance(1 + width)
            try:
                return chr(int(digits, 16))
            except ValueError:
                return "?"
        self.advance()
        return _ESCAPES.get(c, c)

    def literal_string(self) -> str:
        if self.text.startswith("'''", self.i):
            self.advance(3)
            end = self.text.find("'''", self.i)
            end = len(self.text) if end == -1 else end
            raw = self.text[self.i : end]
            self.advance(end + 3 - self.i)
            return raw
        self.advance()  # '
        end = self.text.find("'", self.i)
        end = len(self.text) if end == -1 else end
        raw = self.text[self.i : end]
        self.advance(end + 1 - self.i)
        return raw


__all__ = ["KeyPath", "TomlPositions", "scan"]
