"""One protocol under differential test: its model, its generated module, rpcgen's C.

Used by tests/test_differential_*.py (session-scoped fixtures) and bench/.
"""

from __future__ import annotations

import atexit
import importlib
import itertools
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import corpus
from reference.rpcgen_ref import Reference, build_reference, reference_unavailable

_module_counter = itertools.count()


def required_in_ci() -> bool:
    """CI (XDRGEN_REQUIRE_SHARED=1 or XDRGEN_REQUIRE_REFERENCE=1) fails instead of skipping."""
    return "1" in (
        os.environ.get("XDRGEN_REQUIRE_SHARED"),
        os.environ.get("XDRGEN_REQUIRE_REFERENCE"),
    )


def require_reference() -> None:
    """Skip (or fail in CI) when rpcgen, gcc or libtirpc is missing."""
    reason = reference_unavailable()
    if reason is None:
        return
    message = f"rpcgen reference unavailable: {reason}"
    if required_in_ci():
        pytest.fail(message + " (required: XDRGEN_REQUIRE_SHARED/REFERENCE=1)")
    pytest.skip(message)


def _xdrgen_generate(x_file: Path, outdir: Path, name: str, extra_args: Sequence[str]) -> Path:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xdrgen.cli",
            "generate",
            str(x_file),
            "-o",
            str(outdir),
            "--module",
            name,
            *extra_args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"xdrgen generate {x_file} failed ({result.returncode}):\n{result.stderr}"
        )
    path = outdir / f"{name}.py"
    if not path.is_file():
        raise AssertionError(f"xdrgen generate wrote no {path.name} in {outdir}")
    return path


def generate_module(
    x_file: Path,
    outdir: Path,
    extra_args: Sequence[str] = (),
    imports: Sequence[Path] = (),
) -> ModuleType:
    """Run ``xdrgen generate`` (the public CLI) and import the result under a unique name.

    With ``imports`` (the files of ``--import`` options in ``extra_args``), every
    module goes into a fresh package, as their relative imports need.
    """
    number = next(_module_counter)
    name = f"xdrgen_diff_{x_file.stem}_{number}"
    outdir.mkdir(parents=True, exist_ok=True)
    if not imports:
        from test_generate_helpers import import_file

        return import_file(_xdrgen_generate(x_file, outdir, name, extra_args), name)
    from xdrgen.frontend.pipeline import module_name_for

    package = f"xdrgen_diff_pkg_{number}"
    package_dir = outdir / package
    package_dir.mkdir()
    (package_dir / "__init__.py").write_text("")
    for other in imports:
        earlier = [o for p in imports[: imports.index(other)] for o in ("--import", str(p))]
        _xdrgen_generate(other, package_dir, module_name_for(other), earlier)
    _xdrgen_generate(x_file, package_dir, name, extra_args)
    if str(outdir) not in sys.path:
        sys.path.insert(0, str(outdir))
    return importlib.import_module(f"{package}.{name}")


@dataclass
class ProtocolUnderTest:
    name: str
    x_file: Path
    model: Any  # xdrgen.model.XdrModule
    generated: ModuleType
    reference: Reference
    #: Type names of the model that rpcgen also generated a routine for.
    type_names: list[str] = field(default_factory=list)

    def codec(self, type_name: str) -> Any:
        return self.generated.XDR_TYPES[type_name]


def generate_protocol(
    x_file: Path,
    outdir: Path,
    *,
    constants_from: Sequence[Path] = (),
    imports: Sequence[Path] = (),
) -> tuple[Any, ModuleType]:
    """The resolved model (xdrgen.model.XdrModule) of ``x_file`` and its generated
    module, imported (no rpcgen: tests/engine_refcount.py needs only these)."""
    from xdrgen.frontend import FrontendOptions, load

    model = load(
        x_file, FrontendOptions(constants_from=tuple(constants_from), imports=tuple(imports))
    )
    extra: list[str] = []
    for header in constants_from:
        extra += ["--constants-from", str(header)]
    for other in imports:
        extra += ["--import", str(other)]
    return model, generate_module(x_file, outdir, extra, imports)


def load_protocol(
    name: str,
    x_file: Path,
    outdir: Path,
    *,
    constants_from: Sequence[Path] = (),
    imports: Sequence[Path] = (),
    rpcgen_flags: Sequence[str] = (),
) -> ProtocolUnderTest:
    from reference.rpcgen_ref import LIBRARY_C_TYPES

    model, generated = generate_protocol(
        x_file, outdir, constants_from=constants_from, imports=imports
    )
    # Builtin types of the RPC library (netobj, des_block): test them against its code.
    library = [t for t in model.types if t in LIBRARY_C_TYPES]
    reference = build_reference(
        x_file, rpcgen_flags=rpcgen_flags, imports=imports, library_types=library
    )
    own = [type_name for type_name in model.types if type_name in reference.type_names]
    return ProtocolUnderTest(name, x_file, model, generated, reference, own)


# -- shared per-session protocols (several test modules use the same ones) ---------

REPO_ROOT = Path(__file__).resolve().parents[2]
LIBVIRT_HEADER = Path("/usr/include/libvirt/libvirt.h")
_LOADED: dict[str, ProtocolUnderTest] = {}
#: A protocol whose generation failed fails every later test at once, not by retrying.
_FAILED: dict[str, BaseException] = {}


def _close_all() -> None:
    for protocol in _LOADED.values():
        protocol.reference.close()


atexit.register(_close_all)


def session_protocol(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> ProtocolUnderTest:
    """demo / libvirt / guestfs, generated and built once per test session."""
    if name in _LOADED:
        return _LOADED[name]
    if name in _FAILED:
        raise AssertionError(f"setting up {name} failed earlier: {_FAILED[name]}")
    require_reference()
    outdir = tmp_path_factory.mktemp("diff-" + name.replace("/", "-"))
    try:
        protocol = _load_named(name, outdir)
    except (AssertionError, SyntaxError, ImportError) as error:
        _FAILED[name] = error
        raise
    _LOADED[name] = protocol
    return protocol


@dataclass(frozen=True)
class ProtocolSource:
    """A named protocol's .x file and what ``xdrgen generate`` and rpcgen need for it."""

    x_file: Path
    constants_from: tuple[Path, ...] = ()
    imports: tuple[Path, ...] = ()
    rpcgen_flags: tuple[str, ...] = ()


def protocol_source(name: str) -> ProtocolSource:
    """demo, libvirt, guestfs, ``xfiles/NAME`` or a corpus file's name; skips (fails
    in CI) when the file or what it needs is not installed."""
    from conftest import require_shared

    if name == "demo":
        return ProtocolSource(REPO_ROOT / "protocols" / "demo.x", rpcgen_flags=("-N",))
    if name == "libvirt":
        x_file = require_shared("libvirt/remote_protocol.x")
        if not LIBVIRT_HEADER.is_file():
            message = f"{LIBVIRT_HEADER} not found (install Debian's libvirt-dev)"
            if required_in_ci():
                pytest.fail(message)
            pytest.skip(message)
        return ProtocolSource(x_file, constants_from=(LIBVIRT_HEADER,))
    if name == "guestfs":
        return ProtocolSource(require_shared("guestfs/guestfs_protocol.x"))
    if name.startswith("xfiles/"):
        # Small files of tests/xfiles; -N as several of them have multi-argument procedures.
        return ProtocolSource(REPO_ROOT / "tests" / name, rpcgen_flags=("-N",))
    if name in corpus.BY_NAME:
        entry = corpus.BY_NAME[name]
        return ProtocolSource(
            corpus.require_corpus_file(entry),
            constants_from=entry.constants_from,
            imports=entry.imports,
        )
    raise KeyError(name)


def _load_named(name: str, outdir: Path) -> ProtocolUnderTest:
    source = protocol_source(name)
    return load_protocol(
        name,
        source.x_file,
        outdir,
        constants_from=source.constants_from,
        imports=source.imports,
        rpcgen_flags=source.rpcgen_flags,
    )
