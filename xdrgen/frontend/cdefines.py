"""C constants a .x file can use without defining them in XDR.

rpcgen's C sees more names than the XDR language defines, and real files rely on
them in sizes and case labels:

- ``%#define NAME VALUE`` pass-through lines, in any rpcgen view (nlm_prot.x keeps
  ``LM_MAXSTRLEN`` inside ``#ifdef RPC_HDR``): the header that holds them is included
  by every C file rpcgen writes;
- the names ``<rpc/rpc.h>`` defines for every rpcgen-compiled file: the RFC 5531
  authentication flavors (:data:`RPC_H_CONSTANTS`).

The resolver (``xdrgen.frontend.resolve``) asks for them after the file's own names,
imports and ``-D``/``--constants-from`` values; docs/preprocessing.md and
docs/constants.md give the rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from xdrgen.diagnostics import Diagnostic, Position
from xdrgen.frontend.preprocessing.cexpr import CInt, evaluate_c_expression
from xdrgen.frontend.preprocessing.ctokens import CExprError, Token, tokenize_c
from xdrgen.frontend.preprocessing.macros import MacroTable, expand_macros
from xdrgen.frontend.syntax import PassthroughNode
from xdrgen.model import ConstantDef

#: Names every rpcgen-compiled file gets from ``<rpc/rpc.h>`` (libtirpc's rpc/auth.h),
#: with their RFC 5531 values.  A file's own definition of a name wins.
RPC_H_CONSTANTS: dict[str, int] = {
    "AUTH_NONE": 0,
    "AUTH_NULL": 0,
    "AUTH_SYS": 1,
    "AUTH_UNIX": 1,
    "AUTH_SHORT": 2,
    "AUTH_DH": 3,
    "AUTH_DES": 3,
    "AUTH_KERB": 4,
    "RPCSEC_GSS": 6,
}

#: Where the model says those names come from.
RPC_H_POSITION = Position("<rpc/rpc.h>", 1, 1)

def rpc_h_constants(used: Mapping[str, int]) -> dict[str, ConstantDef]:
    """The model's constants for the names of <rpc/rpc.h> a file used, by value."""
    ordered = sorted(used.items(), key=lambda item: (item[1], item[0]))
    return {
        name: ConstantDef(name, value, RPC_H_POSITION, "From <rpc/rpc.h> (RFC 5531).", str(value))
        for name, value in ordered
    }


# '%#define NAME body': object-like only (a '(' right after the name is a function).
_DEFINE = re.compile(r"[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(?![\w(])(.*)\Z", re.DOTALL)
_CONTINUATION = re.compile(r"\\\n%?")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)


@dataclass(frozen=True, slots=True)
class CDefine:
    """One ``%#define NAME body`` line."""

    name: str
    #: The body as written (comments removed, continuations joined, blanks trimmed).
    text: str
    node: PassthroughNode


def c_defines(lines: Iterable[PassthroughNode], warnings: list[Diagnostic]) -> dict[str, CDefine]:
    """The ``%#define``s of a file, one per name.

    A name defined twice keeps the definition of rpcgen's XDR view, else the first
    one; a second body that differs gets a warning.
    """
    found: dict[str, CDefine] = {}
    for node in lines:
        # A backslash joins the next line, whose own '%' (rpcgen prints each line
        # of the pair) is not part of the C text.
        match = _DEFINE.match(_CONTINUATION.sub(" ", node.text))
        if match is None:
            continue
        text = " ".join(_COMMENT.sub(" ", match.group(2)).split())
        define = CDefine(match.group(1), text, node)
        first = found.get(define.name)
        if first is None:
            found[define.name] = define
            continue
        kept, other = first, define
        if first.node.other_views and not node.other_views:
            kept, other = define, first
            found[define.name] = define
        if kept.text != other.text:
            warnings.append(
                Diagnostic(
                    "warning",
                    f"'%#define {define.name}' is defined again with a different value; "
                    f"xdrgen uses '{kept.text}' from {kept.node.pos}",
                    other.node.pos,
                )
            )
    return found


class CDefineEvaluator:
    """Values of ``%#define``s: macros expand as C would, other names are looked up."""

    def __init__(self, defines: dict[str, CDefine], lookup: Callable[[str], int | None]) -> None:
        self.defines = defines
        self._lookup = lookup
        self._macros: MacroTable = {name: tokenize_c(d.text) for name, d in defines.items()}
        self._values: dict[str, int | None] = {}

    def value(self, name: str) -> int | None:
        """The integer ``name`` stands for in C, or None when it is not an integer
        constant expression (a type, a string, an unknown name)."""
        if name in self._values:
            return self._values[name]
        self._values[name] = None  # a definition that reaches itself is no integer
        try:
            tokens = expand_macros([Token("id", name, 1)], self._macros, handle_defined=False)
            value: int | None = evaluate_c_expression(tokens, self._identifier, pp_mode=False).value
        except CExprError:
            value = None
        self._values[name] = value
        return value

    def _identifier(self, token: Token) -> CInt:
        value = self._lookup(token.text)
        if value is None:
            raise CExprError(f"'{token.text}' is not a known constant", token.col)
        return CInt(value, 64, False)
