"""Render one resolved :class:`~xdrgen.model.XdrModule` into Python source.

The outer structure of every construct comes from the Jinja2 templates in
``templates/`` (one small template per construct); marshaller bodies come from
:mod:`xdrgen.generator.marshal`.  Both emit code already in black's style.
"""

from __future__ import annotations

import re

import jinja2

from xdrgen import __version__
from xdrgen.generator import guestfs_stubs, oncrpc_stubs, rpc
from xdrgen.generator.engine_plan import engine_plan
from xdrgen.generator.layout import (
    LINE,
    assignment,
    bracketed,
    docstring,
    string_literal,
)
from xdrgen.generator.marshal import (
    ModuleContext,
    TypeFunctions,
    py_type,
    type_functions,
    union_value_type,
)
from xdrgen.generator.plan import Planner, TypePlan, plan_value
from xdrgen.generator.plan.nodes import TypeName, UnionPlan
from xdrgen.generator.plan.planner import type_name
from xdrgen.generator.resources import template_dir
from xdrgen.generator.stubs import StubEmitter
from xdrgen.generator.names import (
    enum_member_name,
    field_name,
    py_name,
    union_disc_name,
)
from xdrgen.generator.views import View, view_of
from xdrgen.model import (
    UNBOUNDED,
    ConstantDef,
    DeclKind,
    EnumDef,
    NamedType,
    Parameter,
    PrimitiveType,
    ProcedureTable,
    StructDef,
    TypedefDef,
    TypeRef,
    UnionDef,
    XdrModule,
)

GENERATOR = "xdrgen"

_WORD = re.compile(r"(?<![.\w])[A-Za-z_][A-Za-z0-9_]*")
#: The stub emitters, in the order their sections follow the procedure tables.
STUB_EMITTERS: tuple[type[StubEmitter], ...] = (
    rpc.RpcRenderer,
    guestfs_stubs.GuestfsRenderer,
    oncrpc_stubs.OncRenderer,
)


def make_environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def _doc_lines(text: str | None) -> list[str]:
    if not text:
        return []
    return [line.rstrip() for line in text.strip().splitlines()]


def _comment_lines(text: str | None) -> list[str]:
    return [line if line else "" for line in _doc_lines(text)]


def _int_literal(value: int, text: str) -> str:
    t = text.strip().lower()
    if t.startswith(("0x", "-0x")):
        sign = "-" if value < 0 else ""
        return f"{sign}0x{abs(value):X}"
    return str(value)


class ModuleRenderer:
    def __init__(
        self, module: XdrModule, module_name: str, options_lines: list[str]
    ) -> None:
        self.module = module
        self.module_name = module_name
        self.options_lines = options_lines
        self.env = make_environment()
        self.planner = Planner.for_module(module)
        self.ctx = ModuleContext(
            recursive=self.planner.recursive, module_names=_module_names(module)
        )
        self.plans: dict[str, TypePlan] = {}
        self.defined: set[str] = set()
        #: Python names of the module's types; typedef aliases written as strings.
        self.type_names = {py_name(name) for name in module.types}
        self.quoted: set[str] = set()

    # -------------------------------------------------------------- helpers

    def render(self, template: str, **context: object) -> str:
        return self.env.get_template(template).render(**context).rstrip("\n")

    def type_expr(self, kind: DeclKind, ref: TypeRef | None, size: int | None) -> str:
        """The annotation for a declaration, naming typedefs where the .x did."""
        if kind is DeclKind.PLAIN and isinstance(ref, NamedType):
            return self.ctx.cls(type_name(ref))
        if kind in (DeclKind.FIXED_ARRAY, DeclKind.VAR_ARRAY) and ref is not None:
            return f"list[{self.type_expr(DeclKind.PLAIN, ref, None)}]"
        if kind is DeclKind.OPTIONAL and ref is not None:
            element = self.type_expr(DeclKind.PLAIN, ref, None)
            if view_of(kind, ref, size).kind == "var_array":
                return f"list[{element}]"  # optional data of optional data
            return f"{element} | None"
        return py_type(self.ctx, plan_value(view_of(kind, ref, size)))

    def names_in(self, text: str) -> set[str]:
        out = set()
        for token in text.replace("[", " ").replace("]", " ").replace("|", " ").split():
            out.add(token)
        return out

    # -------------------------------------------------------------- sections

    def constant_section(self, c: ConstantDef) -> str:
        return self.render(
            "constant.py.j2",
            doc=_comment_lines(c.doc),
            name=py_name(c.name),
            value=_int_literal(c.value, c.text),
        )

    def enum_section(self, d: EnumDef) -> str:
        name = py_name(d.name)
        self.defined.add(name)
        members = [
            {
                "name": enum_member_name(m.name),
                "alias": py_name(m.name),
                "value": _int_literal(m.value, m.text),
                "doc": _comment_lines(m.doc),
            }
            for m in d.members
        ]
        aliases = [
            line
            for m in members
            for line in assignment(0, str(m["alias"]), f"{name}.{m['name']}")
        ]
        return self.render(
            "enum.py.j2",
            name=name,
            doc=docstring(4, d.doc),
            members=members,
            aliases=aliases,
        )

    def unshadowed(self, annotation: str, attrs: set[str]) -> str:
        """``annotation`` for use in a class whose attributes are ``attrs``: in a class
        body, a field named like a type (crypt.x's ``des_dir des_dir;``, a field named
        ``list``) hides that type from mypy, so such names go through a module alias."""

        def alias(match: re.Match[str]) -> str:
            word = match.group()
            if word not in attrs:
                return word
            self.type_aliases.setdefault(word, f"_T_{word}")
            return self.type_aliases[word]

        return _WORD.sub(alias, annotation)

    def type_alias_section(self) -> str:
        return "\n".join(
            f"{alias}: _TypeAlias = {word}" for word, alias in self.type_aliases.items()
        )

    def struct_section(self, d: StructDef) -> str:
        name = py_name(d.name)
        self.defined.add(name)
        attrs = [field_name(f.name or "") for f in d.fields]
        fields: list[dict[str, str | list[str]]] = []
        for f in d.fields:
            assert f.name is not None
            fields.append(
                {
                    "attr": field_name(f.name),
                    "type": self.unshadowed(
                        self.type_expr(f.kind, f.type, f.size), set(attrs)
                    ),
                    "doc": _comment_lines(f.doc),
                }
            )
        slots = bracketed(
            4, "__slots__ = (", [string_literal(a) for a in attrs], ")", literal=True
        )
        if len(attrs) == 1:
            slots = [f"    __slots__ = ({string_literal(attrs[0])},)"]
        params = ["self"] + [f"{f['attr']}: {f['type']}" for f in fields]
        signature = bracketed(4, "def __init__(", params, ") -> None:", is_def=True)
        return self.render(
            "struct.py.j2",
            name=name,
            doc=docstring(4, d.doc),
            slots=slots,
            fields=fields,
            signature=signature,
        )

    def union_section(self, d: UnionDef) -> str:
        name = py_name(d.name)
        self.defined.add(name)
        disc = union_disc_name(d.discriminant.name or "")
        attrs = {disc, "value"}
        disc_type = self.unshadowed(
            self.type_expr(
                d.discriminant.kind, d.discriminant.type, d.discriminant.size
            ),
            attrs,
        )
        plan = self.plan(d)
        assert isinstance(plan, UnionPlan)
        value_type = self.unshadowed(union_value_type(self.ctx, plan.union), attrs)
        arms = []
        for arm in d.arms:
            labels = "/".join(label.name or str(label.value) for label in arm.labels)
            arms.append(f"{labels}: {arm.declaration.name or 'void'}")
        if d.default is not None:
            arms.append(f"default: {d.default.name or 'void'}")
        arms_note = ", ".join(arms)
        disc_note = (
            f" ({d.discriminant.name} in the .x)" if disc != d.discriminant.name else ""
        )
        params = ["self", f"{disc}: {disc_type}", f"value: {value_type} = None"]
        if "None" not in value_type.split(" | "):
            params[-1] = f"value: {value_type}"
        signature = bracketed(4, "def __init__(", params, ") -> None:", is_def=True)
        return self.render(
            "union.py.j2",
            name=name,
            doc=docstring(4, d.doc),
            disc=disc,
            disc_type=disc_type,
            disc_note=disc_note,
            value_type=value_type,
            arms_note=arms_note,
            signature=signature,
        )

    def typedef_section(self, d: TypedefDef) -> str:
        name = py_name(d.name)
        decl = d.declaration
        target = self.type_expr(decl.kind, decl.type, decl.size)
        tokens = self.names_in(target)
        # Tokens are Python names (``class_`` for .x ``class``; ``list`` is the builtin).
        pending = {n for n in tokens if n in self.type_names and n not in self.defined}
        pending.discard(name)
        self.defined.add(name)
        # A quoted alias is a str at run time: ``alias | None`` would fail, so an
        # alias that names one is quoted too.
        if pending or name in tokens or tokens & self.quoted:
            target = string_literal(target)
            self.quoted.add(name)
        return self.render(
            "typedef.py.j2", doc=_comment_lines(d.doc), name=name, target=target
        )

    # -------------------------------------------------------------- marshallers

    def plan(self, d: EnumDef | StructDef | UnionDef | TypedefDef) -> TypePlan:
        """The marshalling plan of ``d`` (made once)."""
        plan = self.plans.get(d.name)
        if plan is None:
            plan = self.plans[d.name] = self.planner.type_plan(d)
        return plan

    def function_section(self, d: EnumDef | StructDef | UnionDef | TypedefDef) -> str:
        functions = type_functions(self.ctx, self.plan(d))
        if functions.encode or functions.decode:
            self.fast[d.name] = (functions.encode, functions.decode)
        return self.functions_text(functions)

    def functions_text(self, functions: TypeFunctions) -> str:
        return "\n\n\n".join(
            self.render("functions.py.j2", signature=[], body=p.splitlines())
            for p in functions.sources
        )

    def value_functions(
        self, names: tuple[str, str], type_name: str, pytype: str, view: View
    ) -> str:
        """Encoder and decoder of a declaration seen as ``view``, planned like a
        typedef's body (procedure parameters that are not a type name)."""
        plan = self.planner.value_plan(TypeName(type_name), view)
        self.param_plans[names[0]] = plan
        functions = type_functions(self.ctx, plan, names=names, pytype=pytype)
        return self.functions_text(functions)

    # -------------------------------------------------------------- module

    def module_constants(self) -> str:
        lines = []
        for tname, alias in sorted(self.ctx.imported_codecs.items()):
            codec = f"{alias}.XDR_TYPES[{string_literal(tname)}]"
            lines.extend(
                assignment(0, f"_enc_{py_name(tname)}", f"{codec}.encode_into")
            )
            lines.extend(
                assignment(0, f"_dec_{py_name(tname)}", f"{codec}.decode_from")
            )
        # Defined here, not imported: CPython 3.11 compiles ``name.method(...)`` on
        # an imported name to an attribute load that allocates a bound method on
        # every call (about 40 ns), and ``_U32`` is read once per string and array.
        lines.append('_U32 = _struct.Struct(">I")')
        for fmt, sname in self.ctx.structs.items():
            lines.append(f"{sname} = _struct.Struct({string_literal(fmt)})")
        for (tail, decode), gname in self.ctx.groups.items():
            lines.append(
                f"{gname} = _LengthFormats({string_literal(tail)}, decode={decode})"
            )
        for mname, cls in self.ctx.enum_sources.items():
            lines.extend(
                bracketed(
                    0,
                    f"{mname}: dict[int, {cls}] = {{",
                    ["m.value: m for m in " + cls],
                    "}",
                )
            )
            check = self.ctx.enum_checks[cls]
            enum_label = cls.rpartition(".")[2]
            lines.extend(
                bracketed(
                    0,
                    f"{check} = _ck.EnumCheck(",
                    [string_literal(enum_label), mname],
                    ")",
                )
            )
        for rname, paths, checks, names, holders in self.ctx.run_infos:
            args = [
                string_literal(" ".join(paths)),
                string_literal(" ".join(names)) if names else "None",
            ]
            args += checks
            if holders:
                args.append("holders=True")
            lines.extend(bracketed(0, f"{rname} = _RunInfo(", args, ")"))
        return "\n".join(lines)

    def registry(self) -> str:
        lines = ["XDR_TYPES: dict[str, _Codec[_Any]] = {"]
        for name, d in self.module.types.items():
            if isinstance(d, (EnumDef, StructDef, UnionDef, TypedefDef)):
                pn = py_name(name)
                args = [string_literal(name), f"_enc_{pn}", f"_dec_{pn}"]
                fast = self.fast.get(name)
                if fast:
                    if fast[0]:
                        args.append(f"encode={fast[0]}")
                    if fast[1]:
                        args.append(f"decode={fast[1]}")
                if name in self.ctx.recursive:
                    args.append("recursive=True")
                lines.extend(
                    bracketed(4, f"{string_literal(name)}: _Codec(", args, "),")
                )
        lines.append("}")
        return "\n".join(lines)

    def engine_section(self) -> str:
        """The plans in the compiled engine's notation, and the call that hands
        them to it (docs/compiled-engine.md): after every codec is made."""
        plans = [
            string_literal(engine_plan(self.plan(d)))
            for d in self.module.types.values()
            if isinstance(d, (EnumDef, StructDef, UnionDef, TypedefDef))
        ]
        for number, _ in self._param_decls:
            plan = self.param_plans[f"_penc{number}"]
            plans.append(string_literal(engine_plan(plan, name=f"_PARAM{number}")))
        if not plans:
            return ""
        lines = ["# The same types as plans for the compiled engine, when it is present."]
        lines.extend(bracketed(0, "_ENGINE_PLANS = (", plans, ")", magic=True))
        lines.append("_install_engine(globals(), _ENGINE_PLANS, XDR_TYPES)")
        return "\n".join(lines)

    def codec_expr(self, ref: TypeRef | None) -> str:
        if ref is None:
            return "None"
        if isinstance(ref, PrimitiveType):
            return f"_PRIMITIVE_CODECS[{string_literal(ref.primitive.value)}]"
        if ref.imported_from is not None:
            return f"_imp_{ref.imported_from.module_name}.XDR_TYPES[{string_literal(ref.name)}]"
        return f"XDR_TYPES[{string_literal(ref.name)}]"

    def param_codec_expr(self, param: Parameter | None) -> str:
        """The codec of a procedure argument or result (see model.Parameter)."""
        if param is None:
            return "None"
        if param.kind is DeclKind.PLAIN:
            return self.codec_expr(param.type)
        return self.param_codecs[_param_key(param)][0]

    def param_codec_section(self) -> str:
        """Codecs of the procedure arguments and results that are no type name
        (``string``, ``string<n>``, ``T *``): made like a typedef's, named privately."""
        self.param_codecs: dict[tuple[str, int | None, str], tuple[str, str]] = {}
        for table in self.module.procedure_tables:
            for proc in table.procedures:
                for param in [*proc.args, proc.result]:
                    if param is None or param.kind is DeclKind.PLAIN:
                        continue
                    key = _param_key(param)
                    if key not in self.param_codecs:
                        number = len(self.param_codecs)
                        shown = _param_spelling(param)
                        self.param_codecs[key] = (f"_PARAM{number}", shown)
                        self._param_decls.append((number, param))
        parts = []
        for number, param in self._param_decls:
            codec, shown = self.param_codecs[_param_key(param)]
            pytype = self.type_expr(param.kind, param.type, param.size)
            names = (f"_penc{number}", f"_pdec{number}")
            view = view_of(param.kind, param.type, param.size)
            parts.append(self.value_functions(names, shown, pytype, view))
            args = [string_literal(shown), names[0], names[1]]
            parts.append("\n".join(bracketed(0, f"{codec}: _Codec[{pytype}] = _Codec(", args, ")")))
        return "\n\n\n".join(parts)

    def table_section(self, table: ProcedureTable) -> str:
        lines: list[str] = []
        defined = set(self.module.constants) | set(self.module.external_constants)
        for enum_def in self.module.types.values():
            if isinstance(enum_def, EnumDef):
                defined.update(m.name for m in enum_def.members)
        if table.program_constant and table.program_constant not in defined:
            lines.append(f"{py_name(table.program_constant)} = {table.program}")
        if table.version_constant and table.version_constant not in defined:
            lines.append(f"{py_name(table.version_constant)} = {table.version}")
        if lines:
            lines.append("")
        var = f"_{table.name}_{table.version}_PROCEDURES"
        lines.append(f"{var} = (")
        for proc in table.procedures:
            ann = proc.annotations
            args = [
                str(proc.number),
                string_literal(proc.name),
                string_literal(proc.constant),
                string_literal(proc.method_name),
            ]
            arg_codecs = [self.param_codec_expr(a) for a in proc.args]
            if len(arg_codecs) == 1:
                args.append(f"({arg_codecs[0]},)")
            else:
                args.append("(" + ", ".join(arg_codecs) + ")")
            args.append(self.param_codec_expr(proc.result))
            args.append(self.codec_expr(proc.event))
            for key in ("generate", "priority", "sparseflag"):
                value = getattr(ann, key)
                if value is not None:
                    args.append(f"{key}={string_literal(value)}")
            for key in ("readstream", "writestream"):
                value = getattr(ann, key)
                if value is not None:
                    args.append(f"{key}={value}")
            if ann.optargs:
                pairs = [f"({string_literal(o.field)}, {o.bit})" for o in ann.optargs]
                args.append(_tuple_argument("optargs", pairs))
            if ann.deprecated is not None:
                args.append("deprecated=True")
                if ann.deprecated.replacement:
                    args.append(f"replaced_by={string_literal(ann.deprecated.replacement)}")
            for key in ("acl", "aclfilter"):
                rules = getattr(ann, key)
                if rules:
                    texts = [string_literal(_acl_text(r)) for r in rules]
                    args.append(_tuple_argument(key, texts))
            lines.extend(_call_lines(4, "_ProcedureInfo(", args, "),"))
        lines.append(")")
        return "\n".join(lines)

    def tables(self) -> str:
        if not self.module.procedure_tables:
            return "PROCEDURE_TABLES: dict[str, _ProcedureTable] = {}"
        sections = [self.table_section(t) for t in self.module.procedure_tables]
        lines = ["PROCEDURE_TABLES: dict[str, _ProcedureTable] = {"]
        for t in self.module.procedure_tables:
            key = (
                t.name
                if len({x.name for x in self.module.procedure_tables})
                == len(self.module.procedure_tables)
                else f"{t.name}_{t.version}"
            )
            args = [
                string_literal(t.name),
                string_literal(t.style.value),
                _hex(t.program),
                str(t.version),
                f"_{t.name}_{t.version}_PROCEDURES",
            ]
            lines.extend(
                bracketed(4, f"{string_literal(key)}: _ProcedureTable(", args, "),")
            )
        lines.append("}")
        if len(self.module.procedure_tables) == 1:
            only = self.module.procedure_tables[0]
            lines.append("#: The procedures of the only table, by number.")
            lines.append(
                "PROCEDURES: dict[int, _ProcedureInfo] = PROCEDURE_TABLES["
                + string_literal(only.name)
                + "].procedures"
            )
        return "\n\n\n".join(sections + ["\n".join(lines)])

    def render_module(self) -> str:
        self.fast: dict[str, tuple[str, str]] = {}
        self._param_decls: list[tuple[int, Parameter]] = []
        #: Procedure-parameter plans, by encoder name (``_penc<number>``).
        self.param_plans: dict[str, TypePlan] = {}
        self.type_aliases: dict[str, str] = {}
        sections: list[str] = []
        # Names of <rpc/rpc.h> the file used come first, as the C header has them.
        pending_simple: list[str] = [
            self.constant_section(c) for c in self.module.builtin_constants.values()
        ]

        def flush() -> None:
            if pending_simple:
                sections.append("\n".join(pending_simple))
                pending_simple.clear()

        for definition in self.module.definitions:
            if isinstance(definition, ConstantDef):
                pending_simple.append(self.constant_section(definition))
            elif isinstance(definition, TypedefDef):
                pending_simple.append(self.typedef_section(definition))
            elif isinstance(definition, EnumDef):
                flush()
                sections.append(self.enum_section(definition))
            elif isinstance(definition, StructDef):
                flush()
                sections.append(self.struct_section(definition))
            elif isinstance(definition, UnionDef):
                flush()
                sections.append(self.union_section(definition))
        flush()
        if self.type_aliases:
            sections.append(self.type_alias_section())
        functions = [
            self.function_section(d)
            for d in self.module.types.values()
            if isinstance(d, (EnumDef, StructDef, UnionDef, TypedefDef))
        ]
        # Before module_constants(): their marshallers register formats and run infos.
        params = self.param_codec_section()
        constants = self.module_constants()
        if constants:
            sections.append(constants)
        sections.extend(functions)
        sections.append(self.registry())
        if params:
            sections.append(params)
        engine = self.engine_section()
        if engine:
            sections.append(engine)
        sections.append(self.tables())
        for emit in STUB_EMITTERS:
            sections.extend(emit(self.env, self.module, self).sections())
        imports = sorted(
            {
                (f"_imp_{imp.module_name}", imp.module_name, imp.package or ".")
                for imp in self.module.imports
            },
            key=lambda entry: (entry[2] == ".", entry),  # absolute ones first
        )
        text = self.render(
            "module.py.j2",
            generator=GENERATOR,
            version=__version__,
            source_name=self.module.source.name,
            source_sha256=self.module.source_sha256,
            options_lines=self.options_lines,
            module_name=self.module_name,
            imports=imports,
            sections=sections,
            first_is_definition=_starts_with_definition(sections[0]),
        )
        return text + "\n"


def _param_key(param: Parameter) -> tuple[str, int | None, str]:
    ref = param.type
    target = ""
    if isinstance(ref, NamedType):
        module = ref.imported_from.module_name if ref.imported_from is not None else ""
        target = f"{module}.{ref.name}"
    elif ref is not None:
        target = ref.primitive.value
    return (param.kind.value, param.size, target)


def _param_spelling(param: Parameter) -> str:
    """How the .x writes the parameter's type: ``string<>``, ``string<64>``, ``T *``."""
    if param.kind is DeclKind.STRING:
        return f"string<{param.size_text or ''}>" if param.size != UNBOUNDED else "string<>"
    ref = param.type
    assert param.kind is DeclKind.OPTIONAL and ref is not None
    name = ref.name if isinstance(ref, NamedType) else (ref.spelling or ref.primitive.value)
    return f"{name} *"


def _module_names(module: XdrModule) -> frozenset[str]:
    """Every module-level Python name the .x's own definitions become."""
    names = {py_name(name) for name in module.types}
    names |= {py_name(name) for name in module.constants}
    for definition in module.types.values():
        if isinstance(definition, EnumDef):
            names |= {py_name(member.name) for member in definition.members}
    return frozenset(names)


def _starts_with_definition(section: str) -> bool:
    for line in section.splitlines():
        if line.startswith("#"):
            continue
        return line.startswith(("class ", "def ", "@"))
    return False


def _acl_text(rule: object) -> str:
    from xdrgen.model import AclRule

    assert isinstance(rule, AclRule)
    text = f"{rule.object}:{rule.permission}"
    if rule.flag is not None:
        text += f":{rule.flag}"
    if rule.param is not None:
        text += f"::{rule.param}:{rule.value}"
    return text


def _tuple_argument(key: str, texts: list[str]) -> str:
    """``key=(a, b)`` as an argument of a ``_ProcedureInfo(...)`` call, exploded when long."""
    one = f"{key}=({', '.join(texts)}{',' if len(texts) == 1 else ''})"
    if len(one) + 9 <= LINE or len(texts) == 1:
        return one
    return "\n".join([f"{key}=(", *(f"            {t}," for t in texts), "        )"])


def _hex(value: int) -> str:
    return f"0x{value:X}" if value >= 0 else str(value)


def _call_lines(indent: int, head: str, args: list[str], tail: str) -> list[str]:
    return bracketed(indent, head, args, tail)


def render_module(
    module: XdrModule, module_name: str, options_lines: list[str] | None = None
) -> str:
    """The complete, black-formatted source of the module generated from ``module``."""
    return ModuleRenderer(module, module_name, options_lines or []).render_module()
