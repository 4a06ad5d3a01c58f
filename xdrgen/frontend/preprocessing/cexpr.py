"""C integer constant expressions: ``#if`` arithmetic (intmax_t) and C on LP64 with casts."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

from xdrgen.frontend.preprocessing.ctokens import CExprError, Token
from xdrgen.frontend.preprocessing.limits import MAX_EXPR_DEPTH, MAX_LITERAL_DIGITS


class CInt(NamedTuple):
    """A C integer value with its type: width in bits and signedness."""

    value: int
    bits: int
    unsigned: bool


def _wrap(value: int, bits: int, unsigned: bool) -> CInt:
    value &= (1 << bits) - 1
    if not unsigned and value >> (bits - 1):
        value -= 1 << bits
    return CInt(value, bits, unsigned)


_INT_LITERAL_RE = re.compile(
    r"(0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)"
    r"((?:[uU](?:ll|LL|[lL])?)|(?:(?:ll|LL|[lL])[uU]?))?$"
)

# C11 6.4.4.1 candidate types per (suffix, decimal?) on LP64, as (bits, unsigned).
_INT: tuple[int, bool] = (32, False)
_UINT: tuple[int, bool] = (32, True)
_LONG: tuple[int, bool] = (64, False)
_ULONG: tuple[int, bool] = (64, True)


def parse_int_literal(token: Token, pp_mode: bool) -> CInt:
    match = _INT_LITERAL_RE.match(token.text)
    if match is None:
        raise CExprError(f"'{token.text}' is not an integer constant", token.col)
    digits, suffix = match.group(1), (match.group(2) or "").lower()
    if len(digits) > MAX_LITERAL_DIGITS:
        raise CExprError(
            f"integer constant '{token.text[:20]}...' is too large", token.col
        )
    if digits[:2] in ("0x", "0X"):
        value, decimal = int(digits[2:], 16), False
    elif digits[:2] in ("0b", "0B"):
        value, decimal = int(digits[2:], 2), False
    elif digits.startswith("0"):
        value, decimal = int(digits, 8), False
    else:
        value, decimal = int(digits), True
    if value >= 1 << 64:
        raise CExprError(f"integer constant '{token.text}' is too large", token.col)
    unsigned_suffix = "u" in suffix
    if pp_mode:  # #if arithmetic is done in intmax_t / uintmax_t
        return CInt(value, 64, unsigned_suffix or value >= 1 << 63)
    if unsigned_suffix:
        candidates = [_ULONG] if "l" in suffix else [_UINT, _ULONG]
    elif "l" in suffix:
        candidates = [_LONG] if decimal else [_LONG, _ULONG]
    else:
        candidates = [_INT, _LONG] if decimal else [_INT, _UINT, _LONG, _ULONG]
    for bits, unsigned in candidates:
        limit = 1 << (bits if unsigned else bits - 1)
        if value < limit:
            return CInt(value, bits, unsigned)
    return CInt(value, 64, True)  # gcc: "so large that it is unsigned"


_CHAR_ESCAPES = {
    "n": 10,
    "t": 9,
    "r": 13,
    "0": 0,
    "a": 7,
    "b": 8,
    "f": 12,
    "v": 11,
    "\\": 92,
    "'": 39,
    '"': 34,
    "?": 63,
}


def _char_value(token: Token) -> int:
    body = token.text[token.text.index("'") + 1 :]
    if not body.endswith("'") or len(body) < 2:
        raise CExprError("unterminated character constant", token.col)
    body = body[:-1]
    if len(body) == 1:
        return ord(body)
    if body.startswith("\\"):
        rest = body[1:]
        if rest in _CHAR_ESCAPES:
            return _CHAR_ESCAPES[rest]
        if re.fullmatch(r"[0-7]{1,3}", rest):
            return int(rest, 8) & 0xFF
        if re.fullmatch(r"x[0-9a-fA-F]{1,2}", rest):
            return int(rest[1:], 16)
    raise CExprError(f"unsupported character constant {token.text}", token.col)


# Type names a cast may use in header expressions, as (bits, unsigned).
_TYPEDEF_CASTS: dict[str, tuple[int, bool]] = {
    "int8_t": (8, False),
    "uint8_t": (8, True),
    "int16_t": (16, False),
    "uint16_t": (16, True),
    "int32_t": (32, False),
    "uint32_t": (32, True),
    "int64_t": (64, False),
    "uint64_t": (64, True),
    "size_t": (64, True),
    "ssize_t": (64, False),
    "intptr_t": (64, False),
    "uintptr_t": (64, True),
    "intmax_t": (64, False),
    "uintmax_t": (64, True),
    "u_int": (32, True),
    "u_long": (64, True),
    "u_short": (16, True),
    "u_char": (8, True),
    "u_int32_t": (32, True),
    "u_int64_t": (64, True),
    "bool_t": (32, False),
}
_TYPE_WORDS = frozenset({"unsigned", "signed", "int", "long", "short", "char", "const"})

_BINARY_PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "|": 3,
    "^": 4,
    "&": 5,
    "==": 6,
    "!=": 6,
    "<": 7,
    "<=": 7,
    ">": 7,
    ">=": 7,
    "<<": 8,
    ">>": 8,
    "+": 9,
    "-": 9,
    "*": 10,
    "/": 10,
    "%": 10,
}

IdentLookup = Callable[[Token], CInt]


class _ExprParser:
    """Precedence climbing over tokens; ``live`` is False in unevaluated operands."""

    def __init__(
        self, tokens: Sequence[Token], lookup: IdentLookup, pp_mode: bool, end_col: int
    ):
        self.tokens = tokens
        self.index = 0
        self.lookup = lookup
        self.pp_mode = pp_mode
        self.int_bits = 64 if pp_mode else 32
        self.live = True
        self.depth = 0
        self.end_col = end_col

    def parse(self) -> CInt:
        if not self.tokens:
            raise CExprError("expected an expression", self.end_col)
        result = self.conditional()
        if self.index < len(self.tokens):
            token = self.tokens[self.index]
            raise CExprError(f"unexpected '{token.text}' in expression", token.col)
        return result

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise CExprError("expression ends too early", self.end_col)
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.peek()
        if token is None or token.text != text:
            col = token.col if token is not None else self.end_col
            found = f"'{token.text}'" if token is not None else "end of expression"
            raise CExprError(f"expected '{text}', found {found}", col)
        self.index += 1

    def boolean(self, flag: bool) -> CInt:
        return CInt(int(flag), self.int_bits, False)

    def conditional(self) -> CInt:
        self.depth += 1
        if self.depth > MAX_EXPR_DEPTH:
            token = self.peek()
            raise CExprError(
                "expression nested too deeply", token.col if token else self.end_col
            )
        cond = self.binary(1)
        token = self.peek()
        if token is None or token.text != "?":
            self.depth -= 1
            return cond
        self.index += 1
        live, chosen = self.live, cond.value != 0
        self.live = live and chosen
        when_true = self.conditional()
        self.expect(":")
        self.live = live and not chosen
        when_false = self.conditional()
        self.live = live
        self.depth -= 1
        bits, unsigned = _common_type(when_true, when_false)
        picked = when_true if chosen else when_false
        return _wrap(picked.value, bits, unsigned)

    def binary(self, min_prec: int) -> CInt:
        left = self.unary()
        while True:
            token = self.peek()
            if token is None or token.kind != "op":
                return left
            prec = _BINARY_PRECEDENCE.get(token.text)
            if prec is None or prec < min_prec:
                return left
            self.index += 1
            if token.text in ("&&", "||"):
                live = self.live
                decided = (left.value == 0) if token.text == "&&" else (left.value != 0)
                self.live = live and not decided
                right = self.binary(prec + 1)
                self.live = live
                if token.text == "&&":
                    left = self.boolean(left.value != 0 and right.value != 0)
                else:
                    left = self.boolean(left.value != 0 or right.value != 0)
                continue
            right = self.binary(prec + 1)
            left = self.apply(token, left, right)

    def apply(self, op: Token, a: CInt, b: CInt) -> CInt:
        text = op.text
        if text in ("<<", ">>"):
            a = self.promote(a)
            count = b.value
            if count < 0 or count >= a.bits:
                if not self.live:
                    return a
                raise CExprError(f"shift count {count} is out of range", op.col)
            shifted = a.value << count if text == "<<" else a.value >> count
            return _wrap(shifted, a.bits, a.unsigned)
        bits, unsigned = _common_type(self.promote(a), self.promote(b))
        x = _wrap(a.value, bits, unsigned).value
        y = _wrap(b.value, bits, unsigned).value
        if text in ("/", "%"):
            if y == 0:
                if not self.live:
                    return CInt(0, bits, unsigned)
                raise CExprError("division by zero", op.col)
            quotient = (
                abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
            )  # C truncates
            return _wrap(quotient if text == "/" else x - y * quotient, bits, unsigned)
        if text == "*":
            return _wrap(x * y, bits, unsigned)
        if text == "+":
            return _wrap(x + y, bits, unsigned)
        if text == "-":
            return _wrap(x - y, bits, unsigned)
        if text == "&":
            return _wrap(x & y, bits, unsigned)
        if text == "|":
            return _wrap(x | y, bits, unsigned)
        if text == "^":
            return _wrap(x ^ y, bits, unsigned)
        comparisons = {
            "==": x == y,
            "!=": x != y,
            "<": x < y,
            "<=": x <= y,
            ">": x > y,
            ">=": x >= y,
        }
        return self.boolean(comparisons[text])

    def promote(self, value: CInt) -> CInt:
        return value if value.bits >= 32 else _wrap(value.value, 32, False)

    def unary(self) -> CInt:
        token = self.take()
        if token.kind == "op":
            if token.text == "(":
                cast = None if self.pp_mode else self.cast_type()
                if cast is not None:
                    operand = self.unary()
                    return self.promote(_wrap(operand.value, *cast))
                self.depth += 1
                if self.depth > MAX_EXPR_DEPTH:
                    raise CExprError("expression nested too deeply", token.col)
                inner = self.conditional()
                self.depth -= 1
                self.expect(")")
                return inner
            if token.text in ("+", "-", "~", "!"):
                self.depth += 1
                if self.depth > MAX_EXPR_DEPTH:
                    raise CExprError("expression nested too deeply", token.col)
                operand = self.promote(self.unary())
                self.depth -= 1
                if token.text == "+":
                    return operand
                if token.text == "-":
                    return _wrap(-operand.value, operand.bits, operand.unsigned)
                if token.text == "~":
                    return _wrap(~operand.value, operand.bits, operand.unsigned)
                return self.boolean(operand.value == 0)
        if token.kind == "num":
            return parse_int_literal(token, self.pp_mode)
        if token.kind == "char":
            return CInt(_char_value(token), self.int_bits, False)
        if token.kind == "id":
            return self.lookup(token)
        raise CExprError(f"unexpected '{token.text}' in expression", token.col)

    def cast_type(self) -> tuple[int, bool] | None:
        """A ``(type)`` cast at the current position (after the '('), consumed if found."""
        start = self.index
        words: list[str] = []
        while (token := self.peek()) is not None and token.kind == "id":
            if token.text not in _TYPE_WORDS and not (
                not words and token.text in _TYPEDEF_CASTS
            ):
                break
            words.append(token.text)
            self.index += 1
        closing = self.peek()
        if not words or closing is None or closing.text != ")":
            self.index = start
            return None
        self.index += 1
        if words[0] in _TYPEDEF_CASTS:
            return _TYPEDEF_CASTS[words[0]]
        unsigned = "unsigned" in words
        if "char" in words:
            return 8, unsigned
        if "short" in words:
            return 16, unsigned
        if "long" in words:
            return 64, unsigned
        return 32, unsigned


def _common_type(a: CInt, b: CInt) -> tuple[int, bool]:
    """The usual arithmetic conversions for LP64 (both operands already promoted)."""
    if a.bits == b.bits:
        return a.bits, a.unsigned or b.unsigned
    wider = a if a.bits > b.bits else b
    return wider.bits, wider.unsigned


def evaluate_c_expression(
    tokens: Sequence[Token], lookup: IdentLookup, *, pp_mode: bool, end_col: int = 1
) -> CInt:
    """Evaluate macro-expanded tokens as a C integer constant expression.

    ``pp_mode`` selects ``#if`` semantics (everything in intmax_t, no casts); otherwise
    C types on LP64 and ``(type)`` casts. Raises ``CExprError``.
    """
    return _ExprParser(tokens, lookup, pp_mode, end_col).parse()


def identifier_is_zero(token: Token) -> CInt:
    """The ``#if`` lookup: an identifier left after macro expansion is 0, as in cpp."""
    return CInt(0, 64, False)
