"""Emit Python source lines already in black's style, so black has nothing to do.

Running black over libvirt's generated module takes many seconds; instead the
generator lays out the few constructs that can grow long (calls, signatures,
tuples) the way black would, and a test runs black over every generated file to
prove it leaves them unchanged.
"""

from __future__ import annotations

#: black's default line length.
LINE = 88


def bracketed(
    indent: int,
    head: str,
    items: list[str],
    tail: str,
    *,
    magic: bool = False,
    literal: bool = False,
    is_def: bool = False,
) -> list[str]:
    """``head`` + comma-separated ``items`` + ``tail``, split the way black splits.

    ``head`` ends with an opening bracket and ``tail`` starts with the closing one.
    One line when it fits; else the items on one indented line; else one item per
    line with a trailing comma.  ``magic`` forces the last form (a magic trailing
    comma keeps black from joining it back).  A ``literal`` (tuple, list, dict
    display) never takes the middle form: black explodes collections it splits.
    """
    pad = " " * indent
    joined = ", ".join(items)
    if not magic and not any("\n" in item for item in items):
        one = f"{pad}{head}{joined}{tail}"
        if len(one) <= LINE:
            return [one]
        # black adds a trailing comma to a lone parameter of a split ``def``.
        middle = f"{pad}    {joined}" + ("," if is_def and len(items) == 1 else "")
        if len(middle) <= LINE and not literal:
            return [f"{pad}{head}", middle, f"{pad}{tail}"]
    return [f"{pad}{head}", *(f"{pad}    {item}," for item in items), f"{pad}{tail}"]


def string_literal(text: str) -> str:
    """A double-quoted literal the way black writes it (text is plain ASCII here)."""
    if '"' in text and "'" not in text:
        return "'" + text.replace("\\", "\\\\") + "'"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def docstring(indent: int, text: str | None) -> list[str]:
    """A docstring black leaves alone; .x comments become the text."""
    if not text:
        return []
    lines = [
        line.rstrip()
        for line in text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').splitlines()
    ]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return []
    # Dedent continuation lines the way black re-indents docstrings.
    rest = lines[1:]
    common = min((len(x) - len(x.lstrip()) for x in rest if x.strip()), default=0)
    rest = [x[common:] if x.strip() else "" for x in rest]
    first = lines[0].strip()
    pad = " " * indent
    if first.endswith('"'):
        first += " "
    if not rest:
        return [f'{pad}"""{first}"""']
    out = [f'{pad}"""{first}']
    out.extend(f"{pad}{x}" if x else "" for x in rest)
    last = out[-1]
    if last.endswith('"'):
        out[-1] = last + " "
    out.append(f'{pad}"""')
    return out


def assignment(indent: int, target: str, value: str) -> list[str]:
    """``target = value``, wrapped in parentheses the way black does when too long."""
    pad = " " * indent
    line = f"{pad}{target} = {value}"
    if len(line) <= LINE:
        return [line]
    return [f"{pad}{target} = (", f"{pad}    {value}", f"{pad})"]


def binding(target: str, annotation: str, value: str) -> list[str] | None:
    """``target: annotation = codecs["name"].attr`` split the way black splits it.

    None when even that does not fit (the annotation itself must split: rare).
    """
    head = f"{target}: {annotation} = "
    if len(head) + len(value) <= LINE:
        return [head + value]
    base, sep, rest = value.partition("[")
    key, sep2, attr = rest.partition("]")
    if sep and sep2 and len(head) + len(base) + 1 <= LINE:
        return [f"{head}{base}[", f"    {key}", f"]{attr}"]
    if len(head) + 1 <= LINE and 4 + len(value) <= LINE:
        return [f"{head}(", f"    {value}", ")"]
    return None
