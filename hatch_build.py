"""xdrgen's own build hook (hatchling ``custom``): compile the optional engine.

Not the ``xdrgen`` hatch plugin (xdrgen/hatch_hook.py), which users enable to
generate their modules.  This one builds xdrgen itself: when a C compiler and
Python's headers are there, the wheel carries ``xdrgen/runtime/_engine`` (and a
platform tag); when not, or when the compiler fails, the build goes on and the
wheel is pure Python, which runs everything unchanged, more slowly.  An
editable install compiles the engine in place instead.  The compile command is
the one of ``python3 -m xdrgen._build_engine`` (loaded from the source tree: the
build environment need not have xdrgen installed).
"""

from __future__ import annotations

import importlib.util
import subprocess
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _engine_builder(root: Path) -> ModuleType:
    path = root / "xdrgen" / "_build_engine.py"
    spec = importlib.util.spec_from_file_location("_xdrgen_build_engine", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class EngineBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        builder = _engine_builder(root)
        if version == "editable":
            self._compile(builder, None)
            return
        self._tmp = tempfile.TemporaryDirectory(prefix="xdrgen-engine-")
        made = self._compile(builder, Path(self._tmp.name))
        if made is None:
            return
        build_data["force_include"][str(made)] = f"xdrgen/runtime/{made.name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def _compile(self, builder: ModuleType, directory: Path | None) -> Path | None:
        try:
            made: Path | None = builder.build(
                builder.target(directory), quiet=True
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            self.app.display_warning(
                f"xdrgen: the compiled engine was not built ({exc}); pure Python only"
            )
            return None
        if made is None:
            self.app.display_info("xdrgen: no C compiler; the wheel is pure Python")
        return made

    def finalize(
        self, version: str, build_data: dict[str, Any], artifact_path: str
    ) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            tmp.cleanup()
