"""What the three stub emitters (libvirt ``rpc``, ``guestfs_stubs``, ``oncrpc_stubs``) share.

Each one renders, when the module has procedure tables of its protocol style,
a prelude section (``templates/<folder>/prelude.py.j2``) and then the sections
of every such table, in .x order.  Its templates call it by a short name for
the code shapes they cannot write themselves (``sig``, ``binding``...), and it
asks the module renderer for the Python spelling of types and codecs.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import jinja2

from xdrgen.generator.layout import LINE, bracketed
from xdrgen.generator.layout import binding as layout_binding
from xdrgen.model import DeclKind, Parameter, ProcedureTable, ProtocolStyle, TypeRef, XdrModule


class ModuleNames(Protocol):
    """What the stubs ask of the module renderer (render.ModuleRenderer)."""

    def type_expr(self, kind: DeclKind, ref: TypeRef | None, size: int | None) -> str: ...
    def codec_expr(self, ref: TypeRef) -> str: ...
    def param_codec_expr(self, param: Parameter) -> str: ...


class StubEmitter:
    """The skeleton of a stub emitter: subclasses say which tables and render one."""

    #: The procedure tables this emitter writes stubs for.
    style: ClassVar[ProtocolStyle]
    #: Folder of its templates under ``templates/``.
    folder: ClassVar[str]
    #: The name its templates call it by.
    template_name: ClassVar[str]

    def __init__(self, env: jinja2.Environment, module: XdrModule, renderer: ModuleNames) -> None:
        self.env = env
        self.module = module
        self.renderer = renderer

    def sections(self) -> list[str]:
        """Top-level sections of the generated module (none without such tables)."""
        tables = [t for t in self.module.procedure_tables if t.style is self.style]
        if not tables:
            return []
        out = [self.render("prelude.py.j2")]
        for table in tables:
            out.extend(self.table_sections(table))
        return out

    def table_sections(self, table: ProcedureTable) -> list[str]:
        raise NotImplementedError

    def render(self, template: str, **context: object) -> str:
        """``templates/<folder>/<template>`` with this emitter and ``context``."""
        path = f"{self.folder}/{template}"
        return self.env.get_template(path).render({self.template_name: self}, **context).rstrip("\n")

    # ------------------------------------------------------------ code shapes

    def binding(self, target: str, annotation: str, value: str) -> list[str]:
        """``target: annotation = codecs["name"].attr`` split the way black splits it."""
        lines = layout_binding(target, annotation, value)
        if lines is not None:
            return lines
        return fit([f"{target}: {annotation} = {value}"], 0)  # the annotation itself must split

    def sig(self, indent: int, head: str, items: list[str], tail: str) -> str:
        """A ``def`` line from the templates, split as black splits it."""
        return "\n".join(fit(bracketed(indent, head, items, tail, is_def=True), indent))


def fit(lines: list[str], indent: int) -> list[str]:
    """``lines`` as they are when they fit, else as black formats them.

    The layout helpers cover the common shapes; an item that is itself longer
    than a line (a long subscripted annotation) is rare enough to hand to black,
    inside dummy ``if`` blocks that give it its indentation.
    """
    if all(len(line) <= LINE for line in lines):
        return lines
    import black

    depth = indent // 4
    opener = "".join("    " * i + "if _:\n" for i in range(depth))
    closer = " " * (indent + 4) + "pass\n" if lines[-1].rstrip().endswith(":") else ""
    text = opener + "\n".join(lines) + "\n" + closer
    out = black.format_str(text, mode=black.Mode()).splitlines()[depth:]
    if closer:
        out = out[:-1]
    while out and not out[0].strip():
        out.pop(0)
    return out
