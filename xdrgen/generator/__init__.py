"""The code generator: resolved model -> one black-formatted Python module per .x.

Public API (used by ``xdrgen generate`` and by build-system integration)::

    result = generate_file(Path("demo.x"), Path("out"), module_name=None, options=FrontendOptions())

Output is written atomically (temporary file + ``os.replace``) and only when the
content changes.  A manifest cache (see :mod:`xdrgen.generator.cache`) makes an
unchanged regeneration skip parsing and rendering altogether.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from xdrgen.frontend.options import FrontendOptions
from xdrgen.generator import cache
from xdrgen.generator.names import module_name_for

__all__ = ["GenerateResult", "generate_file", "generate_source", "options_summary"]


@dataclass
class GenerateResult:
    """What :func:`generate_file` did."""

    module_name: str
    #: The generated module's path.
    output: Path
    #: Paths written (empty when the output was already up to date).
    written: list[Path] = field(default_factory=list)
    #: True when the output file's content changed.
    changed: bool = False
    #: True when the manifest cache proved the output current without parsing.
    cached: bool = False
    #: Every input that shaped the output, with its sha256 (source, includes, headers).
    inputs: dict[Path, str] = field(default_factory=dict)
    #: The module's ``.pyc`` when one was asked for (written or already current).
    pyc: Path | None = None


def options_summary(options: FrontendOptions) -> list[str]:
    """Banner lines for the options that shape the output (machine-independent)."""
    parts: list[str] = []
    for name, value in sorted(options.defines.items()):
        parts.append(f"-D {name}={value}")
    for header in options.constants_from:
        parts.append(f"--constants-from {Path(header).name}")
    for other in options.imports:
        parts.append(f"--import {Path(other).name}")
    for api in options.libvirt_api:
        parts.append(f"--libvirt-api {Path(api).name}")
    for annotations in options.annotations:
        parts.append(f"--annotations {Path(annotations).name}")
    return [f"Options: {' '.join(parts)}"] if parts else []


def generate_source(
    source: Path,
    *,
    module_name: str | None = None,
    options: FrontendOptions | None = None,
) -> tuple[str, list[Path]]:
    """Parse, resolve and render ``source``: (module text, input paths)."""
    from xdrgen.frontend import load
    from xdrgen.generator.render import render_module

    options = options or FrontendOptions()
    model = load(Path(source), options)
    name = module_name or module_name_for(Path(source).stem)
    text = render_module(model, name, options_summary(options))
    inputs = list(
        dict.fromkeys(
            [Path(source), *model.inputs, *map(Path, options.imports), *map(Path, options.annotations)]
        )
    )
    return text, inputs


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically replace ``path`` with ``text`` unless it already holds exactly that."""
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def generate_file(
    source: Path,
    outdir: Path,
    *,
    module_name: str | None = None,
    options: FrontendOptions | None = None,
    use_cache: bool = True,
    pyc: bool = False,
) -> GenerateResult:
    """Generate ``outdir/<module_name>.py`` from ``source`` (default name: the .x stem).

    ``pyc``: also write its ``.pyc`` (see :mod:`xdrgen.generator.bytecode`) unless
    a current one is there.
    """
    options = options or FrontendOptions()
    source = Path(source)
    name = module_name or module_name_for(source.stem)
    output = Path(outdir) / f"{name}.py"
    key = cache.options_key(name, options)
    if use_cache:
        hit = cache.lookup(source, output, key)
        if hit is not None:
            result = GenerateResult(name, output, cached=True, inputs=hit)
            return _with_pyc(result) if pyc else result
    text, inputs = generate_source(source, module_name=name, options=options)
    changed = write_if_changed(output, text)
    hashes = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in inputs}
    if use_cache:
        cache.store(
            source,
            output,
            key,
            hashes,
            hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )
    result = GenerateResult(
        name, output, [output] if changed else [], changed, False, hashes
    )
    return _with_pyc(result) if pyc else result


def _with_pyc(result: GenerateResult) -> GenerateResult:
    from xdrgen.generator.bytecode import ensure_pyc, pyc_path

    written = ensure_pyc(result.output)
    if written is not None:
        result.written.append(written)
    result.pyc = pyc_path(result.output)
    return result
