"""Skip regeneration when nothing that shapes the output changed.

A manifest per output file records the sha256 of every input (the .x, its
includes, the C headers constants came from), a key for the generator (see
:func:`generator_fingerprint`) and options, and the sha256 of the output as
written.  If all still match, the output is current and generation is skipped.
Manifests live under ``$XDRGEN_CACHE_DIR`` or ``$XDG_CACHE_HOME/xdrgen``
(default ``~/.cache/xdrgen``), never in the working directory; a missing or
corrupt manifest just means a full generation.  The directory is bounded: after
a new manifest is written, the least recently used ones beyond
:data:`MAX_MANIFESTS` are deleted.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import time
from pathlib import Path

import xdrgen
from xdrgen.frontend.options import FrontendOptions
from xdrgen.generator.resources import template_dir

#: Files of the xdrgen package that shape generated output (globs relative to the
#: package directory): the version, the front end, the model, the diagnostics that
#: decide what is an error, and the generator itself.
PACKAGE_SOURCES: tuple[str, ...] = (
    "__init__.py",
    "diagnostics.py",
    "model.py",
    "frontend/**/*.py",
    "generator/**/*.py",
)
#: Globs relative to the templates directory (``rpc/`` included).
TEMPLATE_SOURCES: tuple[str, ...] = ("**/*.j2",)
#: Third-party distributions whose version shapes output: black formats the lines
#: the layout helpers cannot fit.
DISTRIBUTIONS: tuple[str, ...] = ("black",)

#: How many output manifests the cache directory keeps.
MAX_MANIFESTS = 1000
#: A ``*.tmp`` file in the manifest directory older than this was left by a
#: killed writer and is deleted when the directory is pruned.
STALE_TMP_SECONDS = 3600


def cache_dir() -> Path:
    explicit = os.environ.get("XDRGEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xdrgen"


def fingerprint_roots() -> list[tuple[str, Path, tuple[str, ...]]]:
    """(label, directory, globs) of everything on disk that shapes generated output.

    Labels stand in for the directories in the digest, so a checkout and an
    installed wheel of the same sources give the same fingerprint.
    """
    package = Path(xdrgen.__file__).resolve().parent
    return [
        ("xdrgen", package, PACKAGE_SOURCES),
        ("templates", template_dir(), TEMPLATE_SOURCES),
    ]


def fingerprint_files(
    roots: list[tuple[str, Path, tuple[str, ...]]],
) -> dict[str, Path]:
    """Stable name (``templates/rpc/client.py.j2``) -> path, for every file under ``roots``."""
    files: dict[str, Path] = {}
    for label, directory, patterns in roots:
        for pattern in patterns:
            for path in directory.glob(pattern):
                if path.is_file():
                    files[f"{label}/{path.relative_to(directory).as_posix()}"] = path
    return dict(sorted(files.items()))


def distribution_version(name: str) -> str:
    """The installed version of ``name`` without importing it (``absent`` if missing).

    Reads the ``<name>-<version>.dist-info`` directory name beside the package,
    which takes a fraction of a millisecond; ``importlib.metadata`` (a dozen ms to
    import) is the fallback for unusual layouts.
    """
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return "absent"
    found: list[str] = []
    if spec.origin is not None:
        origin = Path(spec.origin)
        site = (
            origin.parent.parent if spec.submodule_search_locations else origin.parent
        )
        prefix = name.replace("-", "_") + "-"
        try:
            found = [
                entry.name[len(prefix) : -len(".dist-info")]
                for entry in os.scandir(site)
                if entry.name.startswith(prefix) and entry.name.endswith(".dist-info")
            ]
        except OSError:
            pass
    if len(found) == 1:
        return found[0]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def compute_fingerprint(
    roots: list[tuple[str, Path, tuple[str, ...]]],
    distributions: tuple[str, ...] = DISTRIBUTIONS,
) -> str:
    """sha256 over the version, every file under ``roots`` (name and content) and
    the versions of ``distributions``."""
    digest = hashlib.sha256(f"xdrgen {xdrgen.__version__}\n".encode())
    for name, path in fingerprint_files(roots).items():
        try:
            data = path.read_bytes()
        except OSError:
            data = b"\0unreadable"
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    for dist in distributions:
        digest.update(f"{dist}\0{distribution_version(dist)}\0".encode())
    return digest.hexdigest()


@functools.cache
def generator_fingerprint() -> str:
    """Digest of everything that shapes generated output besides the inputs and
    options: editing the generator, a template (any subdirectory), the front end or
    the model in a checkout changes it even when the version number does not.

    Computed once per process; ``xdrgen generate``'s cache key and ``xdrgen
    build``'s manifest both record it.
    """
    return compute_fingerprint(fingerprint_roots())


def options_key(module_name: str, options: FrontendOptions) -> str:
    payload = json.dumps(
        {
            "generator": generator_fingerprint(),
            "module": module_name,
            "defines": sorted(options.defines.items()),
            "constants_from": [str(Path(p).resolve()) for p in options.constants_from],
            "imports": [str(Path(p).resolve()) for p in options.imports],
            "include_dirs": [str(Path(p).resolve()) for p in options.include_dirs],
            "system_cpp": options.system_cpp,
            "libvirt_api": [str(Path(p).resolve()) for p in options.libvirt_api],
            "annotations": [str(Path(p).resolve()) for p in options.annotations],
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
    manifest_path = _manifest_path(output)
    try:
        manifest = json.loads(manifest_path.read_text())
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
    try:
        os.utime(manifest_path)  # recently used: the last to be pruned
    except OSError:
        pass
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
        new = not path.exists()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(manifest, sort_keys=True))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError:
        return  # the cache is an optimisation only
    if new:  # only a new manifest can take the directory over the bound
        prune_manifests(path.parent, MAX_MANIFESTS)


def prune_manifests(directory: Path, keep: int) -> int:
    """Delete the least recently used ``*.json`` manifests in ``directory`` beyond
    the newest ``keep`` (by mtime; a cache hit refreshes it); how many it deleted.

    Also deletes ``*.tmp`` files older than ``STALE_TMP_SECONDS``: what a writer
    killed between writing and renaming left behind (a live writer renames its
    file within milliseconds).  Safe against concurrent writers and deleters: a
    file that vanishes between the listing and its stat or unlink is simply
    skipped, and nothing here raises.
    """
    entries: list[tuple[int, str, str]] = []
    stale_before = time.time_ns() - STALE_TMP_SECONDS * 1_000_000_000
    try:
        with os.scandir(directory) as listing:
            for entry in listing:
                is_tmp = entry.name.endswith(".tmp")
                if not (is_tmp or entry.name.endswith(".json")):
                    continue
                try:
                    mtime = entry.stat(follow_symlinks=False).st_mtime_ns
                except OSError:
                    continue  # deleted meanwhile
                if not is_tmp:
                    entries.append((mtime, entry.name, entry.path))
                elif mtime < stale_before:
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        pass  # gone already, or not ours to delete
    except OSError:
        return 0
    if len(entries) <= keep:
        return 0
    entries.sort()
    removed = 0
    for _, _, victim in entries[: len(entries) - max(keep, 0)]:
        try:
            os.unlink(victim)
        except OSError:
            continue  # another process got there first
        removed += 1
    return removed
