"""The hatchling build hook: generate at build time and ship the generated modules.

Enable it in the user's pyproject.toml::

    [build-system]
    requires = ["hatchling", "pyxdrgen"]
    build-backend = "hatchling.build"

    [tool.hatch.build.hooks.xdrgen]

It runs ``xdrgen build`` on the project (only stale modules are regenerated) and
force-includes the outputs, so they ship even when .gitignore hides them.  The
sdist also carries the manifest: a wheel built from an sdist whose .x sources
live outside the package (not in the sdist) uses the pre-generated modules.

Wheels also carry each generated module's checked-hash ``.pyc`` for the
building interpreter (``__pycache__/<name>.<tag>.pyc``, see
xdrgen.generator.bytecode), compiled into a scratch directory so the project
tree and its manifest are left alone; ``pyc = false`` in the hook's table
turns that off.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

from xdrgen.build.config import ProjectConfig, load_config
from xdrgen.build.incremental import build_project
from xdrgen.build.manifest import MANIFEST_NAME, read_manifest
from xdrgen.diagnostics import XdrgenError, error
from xdrgen.generator.bytecode import pyc_path, write_pyc


class XdrgenBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "xdrgen"

    _scratch: Path | None = None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        compile_pyc = self.config.get("pyc", True)
        if not isinstance(compile_pyc, bool):
            raise RuntimeError("xdrgen build hook: [tool.hatch.build.hooks.xdrgen] 'pyc' must be true or false")
        try:
            config = load_config(root)
            outputs = self._generate(config)
            # Editable wheels import the tree's modules (and ignore force_include).
            standard_wheel = self.target_name == "wheel" and version != "editable"
            compiled = self._compile(outputs, root) if compile_pyc and standard_wheel else {}
        except XdrgenError as exc:
            raise RuntimeError(f"xdrgen build hook failed:\n{exc.render()}") from None
        if self.target_name == "sdist":
            outputs.append(config.output / MANIFEST_NAME)
        force_include = build_data.setdefault("force_include", {})
        for path in outputs:
            force_include[str(path)] = path.relative_to(root).as_posix()
        force_include.update(compiled)

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _compile(self, modules: list[Path], root: Path) -> dict[str, str]:
        """Each module's ``.pyc``, compiled in a scratch copy: scratch path -> path in the wheel."""
        self._scratch = Path(tempfile.mkdtemp(prefix="xdrgen-pyc-"))
        compiled: dict[str, str] = {}
        for module in modules:
            relative = module.relative_to(root)
            copy = self._scratch / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(module, copy)
            pyc = write_pyc(copy)
            compiled[str(pyc)] = pyc_path(relative).as_posix()
            self.app.display_info(f"xdrgen: compiled {pyc_path(relative).as_posix()}")
        return compiled

    def _generate(self, config: ProjectConfig) -> list[Path]:
        missing = [spec for spec in config.modules if not spec.source.is_file()]
        if missing:
            # Building from an sdist: the .x files stayed behind, the outputs came along.
            recorded = read_manifest(config.output).outputs
            for spec in missing:
                if spec.filename not in recorded or not (config.output / spec.filename).is_file():
                    raise _missing_source(spec.source)
            self.app.display_info("xdrgen: .x sources not present, shipping the pre-generated modules")
        else:
            report = build_project(config)
            for path in report.written:
                self.app.display_info(f"xdrgen: generated {path.relative_to(config.root)}")
        return [config.output / spec.filename for spec in config.modules]


def _missing_source(source: Path) -> XdrgenError:
    return error(f"{source}: no such .x file, and no pre-generated module for it")
