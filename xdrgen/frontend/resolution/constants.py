"""Integer values: constants, enum members, program numbers, ``%#define``s, imports."""

from __future__ import annotations

from functools import cached_property

from xdrgen.diagnostics import Position
from xdrgen.frontend import syntax as syn
from xdrgen.frontend.cdefines import (
    RPC_H_CONSTANTS,
    RPC_H_POSITION,
    CDefineEvaluator,
)
from xdrgen.frontend.resolution.builtins import BUILTIN_CONSTANTS, BUILTIN_TYPE_NAMES
from xdrgen.frontend.resolution.names import NameCollector, all_enum_member_lists
from xdrgen.frontend.resolution.state import did_you_mean
from xdrgen.model import (
    ConstantDef,
    EnumDef,
    EnumMember,
)


class ConstantResolver(NameCollector):
    """Evaluates integer values on demand (memoised; cycles are errors)."""

    @cached_property
    def c_evaluator(self) -> CDefineEvaluator:
        """Values of the file's ``%#define``s, as rpcgen's C sees them."""
        return CDefineEvaluator(self.c_defines, self.c_lookup)

    def value_of(self, value: syn.Value, context: str) -> int | None:
        """Integer value of a literal or a constant name; None after reporting an error."""
        if value.number is not None:
            return value.number
        assert value.name is not None
        return self.constant(value.name, value.pos, context)

    def value_once(
        self, name: str, value: syn.Value, what: str, context: str, pos: Position
    ) -> int | None:
        """The value ``name`` is defined as (``what`` names it in the cycle error);
        a value that needs itself is an error, reported at ``pos``."""
        if name in self._evaluating:
            self.fail(f"{what} is defined in terms of itself", pos)
            return None
        self._evaluating.add(name)
        try:
            return self.value_of(value, context)
        finally:
            self._evaluating.discard(name)

    def constant(self, name: str, pos: Position, context: str) -> int | None:
        """The value of the constant ``name`` wherever it comes from, in rpcgen's order of
        lookup; None after reporting an error (``context`` says what needed it)."""
        if name in self.const_values:
            return self.const_values[name]
        if name in self.enum_values:
            return self.enum_values[name]
        node = self.const_nodes.get(name)
        if node is not None:
            return self.evaluate_const(node)
        member = self.enum_member_nodes.get(name)
        if member is not None:
            self._evaluate_enum_members(member[0])
            return self.enum_values.get(name)
        number = self.program_numbers.get(name)
        if number is not None:
            what = f"the number of '{name}'"
            return self.value_once(name, number, what, what, number.pos)
        for imported in self.imports:
            try:
                return imported.model.constant_value(name)
            except KeyError:
                pass
        if name in self.external:
            self.used_external[name] = self.external[name]
            return self.external[name]
        define = self.c_defines.get(name)
        if define is not None:
            value = self.c_evaluator.value(name)
            if value is None:
                self.fail(
                    f"{context}: '{name}' is defined by '%#define {name} {define.text}' "
                    f"at {define.node.pos}, which is not an integer constant expression "
                    "xdrgen can evaluate",
                    pos,
                )
            return value
        if name in BUILTIN_CONSTANTS:
            return BUILTIN_CONSTANTS[name]
        if name in RPC_H_CONSTANTS:
            self.used_rpc_h[name] = RPC_H_CONSTANTS[name]
            return RPC_H_CONSTANTS[name]
        if name in self.type_nodes or name in BUILTIN_TYPE_NAMES:
            self.fail(f"{context}: '{name}' is a type, not an integer constant", pos)
            return None
        known = (
            list(self.const_nodes) + list(self.enum_member_nodes) + list(self.external)
        )
        self.fail(
            f"undefined constant '{name}' in {context}",
            pos,
            *(
                did_you_mean(name, known)
                or (
                    "constants from C headers can be given with -D NAME=VALUE or "
                    "--constants-from HEADER",
                )
            ),
        )
        return None

    def c_lookup(self, name: str) -> int | None:
        """A name in a ``%#define`` body, as rpcgen's C sees it; None if unknown.

        Quiet: what goes wrong here is reported again where the name is defined."""
        errors, warnings = len(self.errors), len(self.warnings)
        value = self.constant(name, RPC_H_POSITION, "")
        del self.errors[errors:]
        del self.warnings[warnings:]
        return value

    def evaluate_const(self, node: syn.ConstNode) -> int | None:
        """The value of a ``const`` definition; also records its ConstantDef."""
        if node.value.string is not None:
            self.fail(
                f"constant '{node.name}' is a string, not an integer", node.value.pos
            )
            return None
        what = f"constant '{node.name}'"
        value = self.value_once(
            node.name, node.value, what, f"the value of {what}", node.pos
        )
        if value is not None:
            self.const_values[node.name] = value
            self.constants[node.name] = ConstantDef(
                node.name, value, node.pos, node.doc, node.value.text
            )
        return value

    def _evaluate_enum_members(self, start: syn.EnumMemberNode) -> None:
        """Evaluate the enum that owns ``start`` (implicit values depend on order)."""
        for node in self.spec.definitions:
            for members in all_enum_member_lists(node):
                if any(m is start for m in members):
                    self.evaluate_member_list(members)
                    return

    def evaluate_member_list(
        self, members: list[syn.EnumMemberNode]
    ) -> list[EnumMember]:
        """The members of one enum, in order (an implicit value is the previous + 1)."""
        result: list[EnumMember] = []
        previous: int | None = None
        seen: dict[int, str] = {}
        for member in members:
            if member.name in self.enum_values:
                value: int | None = self.enum_values[member.name]
            elif member.value is None:
                value = 0 if previous is None else previous + 1
            else:
                what = f"enum member '{member.name}'"
                value = self.value_once(
                    member.name, member.value, what, f"the value of {what}", member.pos
                )
            if value is None:
                return result
            if not -(2**31) <= value <= 2**31 - 1:
                self.fail(
                    f"enum member '{member.name}' = {value} does not fit in a 32-bit signed int",
                    member.pos,
                )
            self.enum_values[member.name] = value
            result.append(
                EnumMember(
                    member.name,
                    value,
                    member.pos,
                    member.doc,
                    member.value.text if member.value else "",
                )
            )
            previous = value
        for member_def, node in zip(result, members):
            if member_def.value in seen:
                # C and rpcgen accept aliases (rpcsvc's nis_object.x has them): warn only.
                self.warn(
                    f"duplicate enum value {member_def.value}: '{member_def.name}' is an "
                    f"alias of '{seen[member_def.value]}'",
                    node.pos,
                )
            else:
                seen[member_def.value] = member_def.name
        return result

    def enum_def(
        self,
        name: str,
        members: list[syn.EnumMemberNode],
        pos: Position,
        doc: str | None,
        nested_in: str | None = None,
    ) -> EnumDef:
        """An enum definition (top-level, typedef'd or inline) and its members' owner."""
        evaluated = self.evaluate_member_list(members)
        for member in evaluated:
            self.member_enum[member.name] = name
        return EnumDef(name, evaluated, pos, doc, nested_in=nested_in)

    def c_define_constant(self, name: str) -> ConstantDef | None:
        """The module constant a ``%#define`` gives: an integer the file leaves to it."""
        define = self.c_defines[name]
        if name in self.defined_at or any(
            name in imported.model.constants or name in imported.model.types
            for imported in self.imports
        ):
            # rpcb_prot.x repeats its consts as %#defines: only a different value matters.
            own = self.c_lookup(name)
            if own is None or own != self.c_evaluator.value(name):
                self.warn(
                    f"'%#define {name} {define.text}' is ignored: the .x defines "
                    f"'{name}' itself" + (f" (= {own})" if own is not None else ""),
                    define.node.pos,
                )
            return None
        if name in self.external:
            return None  # -D and --constants-from values win, as they do everywhere
        value = self.c_evaluator.value(name)
        if value is None:
            return (
                None  # C only (a type, a string, an expression of C names): no constant
            )
        constant = ConstantDef(
            name, value, define.node.pos, None, define.text, c_define=True
        )
        self.constants[name] = constant
        return constant
