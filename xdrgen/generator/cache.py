"""Skip regeneration when nothing that shapes the output changed.

A manifest per output file records the sha256 of every input (the .x, its
includes, the C headers constants came from), a key for the generator version
and options, and the sha256 of the output as written.  If all still match, the
output is current and generation is skipped.  Manifests live under
``$XDRGEN_CACHE_DIR`` or ``$XDG_CACHE_HOME/xdrgen`` (default ``~/.cache/xdrgen``),
never in the working directory; a missing or corrupt manifest just means a full
generation.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from xdrgen import __version__
from xdrgen.frontend.options import FrontendOptions
from xdrgen.generator.resources import template_dir


def cache_dir() -> Path:
    explicit = os.environ.get("XDRGEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xdrgen"


def _generator_fingerprint() -> str:
    """Version plus a digest of the generator's code and templates.

    Editing the generator in a checkout must invalidate cached outputs even when
    the version number does not change.
    """
    digest = hashlib.sha256(__version__.encode())
    here = Path(__file__).resolve().parent
    files = sorted(here.glob("*.py")) + sorted(template_dir().glob("*.j2"))
    for path in files:
        try:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()


def options_key(module_name: str, options: FrontendOptions) -> str:
    payload = json.dumps(
        {
            "generator": _generator_fingerprint(),
            "module": module_name,
            "defines": sorted(options.defines.items()),
            "constants_from": [str(Path(p).resolve()) for p in options.constants_from],
            "imports": [str(Path(p).resolve()) for p in options.imports],
            "include_dirs": [str(Path(p).resolve()) for p in options.include_dirs],
            "system_cpp": options.system_cpp,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _manifest_path(output: Path) -> Path:
    ident = hashlib.sha256(str(output.resolve()).encode()).hexdigest()[:32]
    return cache_dir() / "manifests" / f"{ident}.json"


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def lookup(source: Path, output: Path, key: str) -> dict[Path, str] | None:
    """The recorded inputs when ``output`` is provably current, else None."""
    try:
        manifest = json.loads(_manifest_path(output).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("key") != key:
        return None
    if manifest.get("source") != str(source.resolve()):
        return None
    if _sha(output) != manifest.get("output_sha256"):
        return None
    inputs = manifest.get("inputs")
    if not isinstance(inputs, dict):
        return None
    result: dict[Path, str] = {}
    for name, digest in inputs.items():
        path = Path(name)
        if _sha(path) != digest:
            return None
        result[path] = digest
    return result


def store(
    source: Path, output: Path, key: str, inputs: dict[Path, str], output_sha256: str
) -> None:
    manifest = {
        "key": key,
        "source": str(source.resolve()),
        "output_sha256": output_sha256,
        "inputs": {str(p.resolve()): digest for p, digest in inputs.items()},
    }
    path = _manifest_path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(manifest, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # the cache is an optimisation only
