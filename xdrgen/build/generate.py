"""The one place the build step calls the generator (kept small so an API change
touches one file)."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from xdrgen.build.config import ModuleSpec
from xdrgen.diagnostics import error
from xdrgen.frontend.options import FrontendOptions


@dataclass(frozen=True)
class Generated:
    #: The module's Python source, as the generator wrote it.
    text: bytes
    #: Every file read to make it (the .x, #includes, C headers, imported .x files).
    inputs: tuple[Path, ...]


def generate_text(spec: ModuleSpec) -> Generated:
    """Run the generator for one module in a scratch directory; nothing else is written."""
    try:
        from xdrgen.generator import generate_file
    except ImportError:  # pragma: no cover - only while the generator is being written
        raise error("this xdrgen has no code generator (xdrgen.generator.generate_file)") from None
    if not spec.source.is_file():
        raise error(f"{spec.source}: no such .x file (module {spec.name})")
    scratch = Path(tempfile.mkdtemp(prefix="xdrgen-build-"))
    try:
        result = generate_file(spec.source, scratch, module_name=spec.name, options=spec.options, use_cache=False)
        produced = _output_path(result, scratch, spec.name)
        text = produced.read_bytes()
        inputs = _inputs(result, spec.source, spec.options)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Generated(text, inputs)


def _output_path(result: object, scratch: Path, name: str) -> Path:
    for attr in ("path", "output", "output_path"):
        value = getattr(result, attr, None)
        if isinstance(value, (str, os.PathLike)) and Path(value).is_file():
            return Path(value)
    candidate = scratch / f"{name}.py"
    if candidate.is_file():
        return candidate
    raise error(f"the generator wrote no {name}.py")  # pragma: no cover


def _inputs(result: object, source: Path, options: FrontendOptions) -> tuple[Path, ...]:
    """``XdrModule.inputs`` from the result when it carries the model, else from a
    fresh front-end pass; plus the option files, in case the model left one out."""
    module = getattr(result, "module", None) or getattr(result, "model", None)
    inputs = getattr(result, "inputs", None) or getattr(module, "inputs", None)
    if inputs is None:
        from xdrgen.frontend import load

        inputs = load(source, options).inputs
    ordered: dict[Path, None] = {}
    for path in [
        source,
        *inputs,
        *options.constants_from,
        *options.imports,
        *options.libvirt_api,
        *options.annotations,
    ]:
        ordered[Path(os.path.abspath(path))] = None
    return tuple(ordered)
