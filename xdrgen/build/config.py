"""The ``[tool.xdrgen]`` table of a project's pyproject.toml, validated.

Example::

    [tool.xdrgen]
    output = "src/mypkg/protocol"          # directory that receives the modules
    defines = { FEATURE_X = "1" }          # -D for every module
    constants-from = ["/usr/include/libvirt/libvirt.h"]
    libvirt-api = ["/usr/share/libvirt/api/libvirt-api.xml"]
    include-dirs = ["proto"]
    cpp = false
    annotations = "proto/annotations.toml"  # procedure annotations (or a list)
    pyc = true                             # also write each module's .pyc

    [[tool.xdrgen.modules]]
    source = "../libvirt/src/remote/remote_protocol.x"
    name = "remote"                        # default: the file's stem
    imports = ["proto/common.x"]           # plus any of the table keys above

Relative paths are relative to the directory holding pyproject.toml.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xdrgen.diagnostics import error
from xdrgen.frontend.options import FrontendOptions
from xdrgen.generator.names import module_name_for

PYPROJECT = "pyproject.toml"
#: Keys allowed both at table level (defaults) and per module.
_SHARED_KEYS = frozenset(
    {"defines", "constants-from", "include-dirs", "imports", "cpp", "libvirt-api", "annotations"}
)
_TABLE_KEYS = _SHARED_KEYS | {"output", "modules", "pyc"}
_MODULE_KEYS = _SHARED_KEYS | {"source", "name"}


@dataclass(frozen=True)
class ModuleSpec:
    """One generated module: where its .x lives and how to read it."""

    source: Path
    name: str
    options: FrontendOptions

    @property
    def filename(self) -> str:
        return f"{self.name}.py"


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    #: Directory receiving the generated modules and the manifest.
    output: Path
    modules: tuple[ModuleSpec, ...]
    #: Also write (and check) each module's ``.pyc`` (xdrgen.generator.bytecode).
    pyc: bool = False


def load_config(project: Path) -> ProjectConfig:
    """Read ``project/pyproject.toml``; raises ``XdrgenError`` naming the bad key."""
    root = project.resolve()
    pyproject = root / PYPROJECT
    try:
        with open(pyproject, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise error(f"{pyproject}: no such file (xdrgen build needs a pyproject.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{pyproject}: not valid TOML: {exc}") from None
    table = document.get("tool", {}).get("xdrgen")
    if not isinstance(table, dict):
        raise error(f"{pyproject}: no [tool.xdrgen] table")
    return parse_config(table, root, str(pyproject))


def parse_config(table: dict[str, Any], root: Path, where: str = PYPROJECT) -> ProjectConfig:
    _reject_unknown(table, _TABLE_KEYS, f"{where}: [tool.xdrgen]")
    output = table.get("output")
    if not isinstance(output, str) or not output:
        raise error(f"{where}: [tool.xdrgen] needs 'output', the directory for generated modules")
    entries = table.get("modules")
    if not isinstance(entries, list) or not entries:
        raise error(f"{where}: [tool.xdrgen] needs at least one [[tool.xdrgen.modules]] entry")
    modules: list[ModuleSpec] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        label = f"{where}: [[tool.xdrgen.modules]] #{index + 1}"
        if not isinstance(entry, dict):
            raise error(f"{label}: must be a table")
        _reject_unknown(entry, _MODULE_KEYS, label)
        source = entry.get("source")
        if not isinstance(source, str) or not source:
            raise error(f"{label}: needs 'source', the path of a .x file")
        source_path = _path(root, source)
        name = entry.get("name", module_name_for(source_path.stem))
        if not isinstance(name, str) or not name.isidentifier():
            raise error(f"{label}: 'name' must be a Python identifier, got {name!r}")
        if name in seen:
            raise error(f"{label}: module name {name!r} is already used by entry #{seen[name]}")
        seen[name] = index + 1
        modules.append(ModuleSpec(source_path, name, _options(table, entry, root, label)))
    pyc = table.get("pyc", False)
    if not isinstance(pyc, bool):
        raise error(f"{where}: [tool.xdrgen] 'pyc' must be true or false")
    return ProjectConfig(root, _path(root, output), tuple(modules), pyc)


def _options(table: dict[str, Any], entry: dict[str, Any], root: Path, label: str) -> FrontendOptions:
    defines: dict[str, str] = {}
    for scope in (table, entry):
        raw = scope.get("defines", {})
        if not isinstance(raw, dict):
            raise error(f"{label}: 'defines' must be a table of NAME = value")
        for key, value in raw.items():
            if not key.isidentifier() or isinstance(value, bool) or not isinstance(value, (str, int)):
                raise error(f"{label}: define {key!r} must be an identifier with a string or integer value")
            defines[key] = str(value)
    cpp = entry.get("cpp", table.get("cpp", False))
    if not isinstance(cpp, bool):
        raise error(f"{label}: 'cpp' must be true or false")
    return FrontendOptions(
        defines=defines,
        constants_from=_paths(table, entry, "constants-from", root, label),
        imports=_paths(table, entry, "imports", root, label),
        include_dirs=_paths(table, entry, "include-dirs", root, label),
        system_cpp=cpp,
        libvirt_api=_paths(table, entry, "libvirt-api", root, label),
        annotations=_paths(table, entry, "annotations", root, label, single=True),
    )


def _paths(
    table: dict[str, Any], entry: dict[str, Any], key: str, root: Path, label: str, *, single: bool = False
) -> tuple[Path, ...]:
    """Table-level paths first, then the module's own; ``single``: one path may stand alone."""
    result: list[Path] = []
    for scope in (table, entry):
        raw = scope.get(key, [])
        if single and isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
            raise error(f"{label}: '{key}' must be {'a path or ' if single else ''}a list of paths")
        result.extend(_path(root, item) for item in raw)
    return tuple(result)


def _path(root: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else root / path))


def _reject_unknown(table: dict[str, Any], allowed: frozenset[str], label: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise error(f"{label}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
