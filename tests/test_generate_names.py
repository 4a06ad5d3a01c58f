""".x names -> Python names: one to one, and never hiding what the generated code uses."""

from __future__ import annotations

import ast
import builtins
import itertools
import keyword
import re
from pathlib import Path

import pytest

from test_generate_helpers import DEMO_X, generated_text
from xdrgen.generator.names import (
    FUNCTION_LOCALS,
    GENERATED_PUBLIC,
    PYTHON_BUILTINS,
    enum_member_name,
    field_name,
    py_name,
)

#: Temporaries of the marshallers (``FunctionBody.tmp``): a prefix and a counter.
TEMPORARY = re.compile(r"^[a-z]{1,2}\d+$")


def _user_names(tree: ast.Module) -> set[str]:
    """Module-level names the .x's definitions become (not the generated code's own)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_") and n not in GENERATED_PUBLIC}


def _function_locals(text: str) -> set[str]:
    """Parameters and assigned names of the module-level functions of ``text`` that
    read a name of the .x's definitions in their body (those a same-named local
    would hide)."""
    tree = ast.parse(text)
    user = _user_names(tree)
    names: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        local = {a.arg for a in node.args.args + node.args.kwonlyargs}
        loads: set[str] = set()
        # The body only: a signature's annotations are read outside the function.
        for sub in (n for statement in node.body for n in ast.walk(statement)):
            if isinstance(sub, (ast.FunctionDef, ast.Lambda)):
                local.update(a.arg for a in sub.args.args + sub.args.kwonlyargs)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                local.add(sub.id)
            elif isinstance(sub, ast.Name):
                loads.add(sub.id)
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                local.add(sub.name)
        if loads & user:
            names |= local
    return {name for name in names if not name.startswith("_")}


@pytest.mark.parametrize("which", ["demo", "libvirt", "guestfs"])
def test_function_locals_are_reserved_or_temporaries(
    which: str, remote_protocol_x: Path, libvirt_header: Path, guestfs_protocol_x: Path
) -> None:
    """A local the generator adds must be in FUNCTION_LOCALS (so that py_name keeps
    types away from it) or be a temporary (which avoids the module's names)."""
    source = {"demo": DEMO_X, "libvirt": remote_protocol_x, "guestfs": guestfs_protocol_x}
    names = _function_locals(generated_text(source[which]))
    unlisted = sorted(n for n in names if n not in FUNCTION_LOCALS and not TEMPORARY.match(n))
    assert not unlisted, f"add to names.FUNCTION_LOCALS: {unlisted}"


def test_builtin_list_is_python_311s() -> None:
    # A fixed list keeps the output independent of the Python running the generator;
    # it must hold at least every builtin of the Python running the tests that 3.11 has.
    current = {
        n for n in dir(builtins) if not n.startswith("_") and not keyword.iskeyword(n)
    }
    missing = current - PYTHON_BUILTINS - {"PythonFinalizationError"}
    assert not missing


@pytest.mark.parametrize("convert", [py_name, field_name, enum_member_name])
def test_names_map_one_to_one(convert: object) -> None:
    assert callable(convert)
    bases = ["from", "self", "list", "data", "mro", "value", "name", "plain", "x1", "e"]
    names = [base + "_" * count for base, count in itertools.product(bases, range(4))]
    converted = [convert(name) for name in names]
    assert len(set(converted)) == len(names), sorted(zip(converted, names))
    for name, python in zip(names, converted):
        assert python.isidentifier() and not keyword.iskeyword(python)
        assert python == name or python == name + "_"


def test_examples() -> None:
    assert py_name("from") == "from_" and py_name("from_") == "from__"
    assert py_name("list") == "list_" and py_name("data") == "data_"
    assert py_name("remote_domain") == "remote_domain" and py_name("fattr3") == "fattr3"
    assert py_name("name") == "name"  # e.g. rpcsvc mount.x's typedef string name<>
    assert enum_member_name("name") == "name_" and enum_member_name("mro") == "mro_"
    assert field_name("list") == "list" and field_name("self_") == "self__"
