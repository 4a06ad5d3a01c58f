"""Generate (once) and import the Python module for libvirt's remote_protocol.x.

The examples and tests do not ship code generated from libvirt's .x file (it
is derived from another project's file); they generate it at run time into a
cache directory, keyed by the inputs and the generator's own sources, so a
second run only imports it.  Its ``.pyc`` is written with it: importing the
5 MB module without one compiles it (about a second and 250 MB of memory a
long-running server keeps), also where bytecode is never written
(PYTHONDONTWRITEBYTECODE).

Where the inputs come from:
- ``XDRGEN_LIBVIRT_X``: remote_protocol.x (default: ../shared/protocols/libvirt/
  beside the checkout);
- ``XDRGEN_LIBVIRT_HEADER``: libvirt.h for the constants the .x takes from C
  (default /usr/include/libvirt/libvirt.h, Debian's libvirt-dev);
- ``XDRGEN_LIBVIRT_API``: libvirt-api.xml, where the server skeleton takes the
  API names and error domains of its "not supported" answers (default
  /usr/share/libvirt/api/libvirt-api.xml, also from libvirt-dev);
- ``XDRGEN_CACHE``: where generated modules go (default ~/.cache/xdrgen).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from xdrgen.generator.bytecode import ensure_pyc
from xdrgen.generator.cache import generator_fingerprint

REPO = Path(__file__).resolve().parents[1]
DEFAULT_X = REPO.parent / "shared" / "protocols" / "libvirt" / "remote_protocol.x"
DEFAULT_HEADER = Path("/usr/include/libvirt/libvirt.h")
DEFAULT_API = Path("/usr/share/libvirt/api/libvirt-api.xml")
MODULE_NAME = "remote_protocol"


class InputsMissing(FileNotFoundError):
    """remote_protocol.x or libvirt.h is not where we looked."""


def inputs() -> tuple[Path, Path, Path]:
    x = Path(os.environ.get("XDRGEN_LIBVIRT_X", DEFAULT_X))
    header = Path(os.environ.get("XDRGEN_LIBVIRT_HEADER", DEFAULT_HEADER))
    api = Path(os.environ.get("XDRGEN_LIBVIRT_API", DEFAULT_API))
    if not x.is_file():
        raise InputsMissing(f"{x}: libvirt's remote_protocol.x not found (set XDRGEN_LIBVIRT_X)")
    if not header.is_file():
        raise InputsMissing(f"{header}: libvirt.h not found (install libvirt-dev or set XDRGEN_LIBVIRT_HEADER)")
    if not api.is_file():
        raise InputsMissing(f"{api}: libvirt-api.xml not found (install libvirt-dev or set XDRGEN_LIBVIRT_API)")
    return x, header, api


def generated_path(cache: Path | None = None) -> Path:
    """Generate the module unless the cache has it for these inputs; its path."""
    x, header, api = inputs()
    digest = hashlib.sha256()
    for part in (x.read_bytes(), header.read_bytes(), api.read_bytes(), generator_fingerprint().encode()):
        digest.update(hashlib.sha256(part).digest())
    key = digest.hexdigest()[:16]
    base = cache or Path(os.environ.get("XDRGEN_CACHE", Path.home() / ".cache" / "xdrgen"))
    target = base / f"libvirt-{key}" / f"{MODULE_NAME}.py"
    if target.is_file():
        _compiled(target)
        return target
    from xdrgen.frontend import load
    from xdrgen.frontend.options import FrontendOptions
    from xdrgen.generator.render import render_module

    model = load(x, FrontendOptions(constants_from=(header,), libvirt_api=(api,)))
    text = render_module(model, MODULE_NAME)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: concurrent first runs never see half a module.
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, target)
    _compiled(target)
    return target


def _compiled(module: Path) -> None:
    """Write the module's .pyc unless a current one is there."""
    try:
        ensure_pyc(module)
    except OSError:
        pass  # an optimisation only: without it the import compiles


def load_remote_protocol(cache: Path | None = None) -> ModuleType:
    """The generated module for remote_protocol.x, imported (once per process)."""
    loaded = sys.modules.get(MODULE_NAME)
    if loaded is not None and getattr(loaded, "RemoteClient", None) is not None:
        return loaded
    path = generated_path(cache)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    print(generated_path())
