"""The ``.pyc`` of a generated module, written by xdrgen rather than at first import.

Compiling libvirt's generated module (5 MB of source) takes about a second and
250-300 MB of memory; a process that imports it without a ``.pyc`` pays that
at every start when the directory is read-only.  ``xdrgen generate --pyc``,
``pyc = true`` in ``[tool.xdrgen]`` and the hatchling hook write the ``.pyc``
once, where the import system looks for it:
``<dir>/__pycache__/<name>.<cache tag>.pyc`` (``cpython-311`` for CPython 3.11),
atomically, with ``py_compile``, exactly as ``compileall`` would.

Invalidation: checked hash (PEP 552).  The header holds a hash of the source
instead of its mtime and size, so the ``.pyc`` stays valid wherever the
module's bytes are copied (a wheel installed by a tool that does not keep
mtimes, a git checkout, a container image layer) and is never used for an
edited module: the import system hashes the source at every import (a few ms
for libvirt's module, against ~1 s of compiling) and recompiles on a
mismatch.  Timestamp pycs go stale when mtimes change, so a read-only copy
would recompile at every start; unchecked-hash pycs would run stale code for
a hand-edited module.
"""

from __future__ import annotations

import importlib.util
import py_compile
import sys
from pathlib import Path

#: PEP 552 flags word of a checked-hash pyc: bit 0 hash-based, bit 1 check the source.
_CHECKED_HASH_FLAGS = 0b11


def cache_tag() -> str:
    """This interpreter's bytecode tag (``cpython-311``): which ``.pyc`` it reads."""
    tag = sys.implementation.cache_tag
    if tag is None:  # pragma: no cover - interpreters without bytecode caching
        raise RuntimeError("this Python interpreter does not cache bytecode")
    return str(tag)


def pyc_path(module: Path) -> Path:
    """Where this interpreter looks for the bytecode of ``module`` (optimisation level 0).

    Always beside the module, as in a wheel or an installed package: a
    ``PYTHONPYCACHEPREFIX`` of the process that runs xdrgen is not followed.
    """
    return module.parent / "__pycache__" / f"{module.stem}.{cache_tag()}.pyc"


def write_pyc(module: Path) -> Path:
    """Compile ``module`` into its checked-hash ``.pyc`` (atomic replace); returns its path.

    Raises ``XdrgenError`` when the module does not compile (a hand-edited one),
    ``OSError`` when the ``.pyc`` cannot be written.
    """
    target = pyc_path(module)
    try:
        py_compile.compile(
            str(module),
            cfile=str(target),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )
    except py_compile.PyCompileError as exc:
        from xdrgen.diagnostics import error

        raise error(f"{module}: cannot compile it to bytecode: {exc.exc_type_name}: {exc.exc_value}") from None
    return target


def pyc_matches(module: Path, pyc: Path | None = None) -> bool:
    """Whether ``pyc`` (default: ``pyc_path(module)``) is checked-hash bytecode of
    ``module``'s current bytes for this interpreter: the test the import system
    applies, without loading any code."""
    pyc = pyc_path(module) if pyc is None else pyc
    try:
        with open(pyc, "rb") as handle:
            header = handle.read(16)
        source = module.read_bytes()
    except OSError:
        return False
    return (
        len(header) == 16
        and header[:4] == importlib.util.MAGIC_NUMBER
        and int.from_bytes(header[4:8], "little") == _CHECKED_HASH_FLAGS
        and header[8:16] == importlib.util.source_hash(source)
    )


def ensure_pyc(module: Path) -> Path | None:
    """Write ``module``'s ``.pyc`` unless a matching one is there; the path written, or None."""
    if pyc_matches(module):
        return None
    return write_pyc(module)


__all__ = ["cache_tag", "pyc_path", "write_pyc", "pyc_matches", "ensure_pyc"]
