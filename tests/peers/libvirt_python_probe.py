"""Run one libvirt-python call against a (hostile) server; print what happened as JSON.

    python libvirt_python_probe.py SOCKET METHOD

Opens ``test+unix:///default?socket=SOCKET`` with libvirt's own client, calls
``METHOD`` on the connection (``getVersion``, ``listAllDomains``, ...), then
``getLibVersion`` to see whether the connection survived.  The tests run it in
a subprocess with a timeout: libvirt's client may also hang, which is an
observation too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

PROBE_TIMEOUT = 20.0


def libvirt_python_available() -> str | None:
    """None when libvirt-python imports here, else why not."""
    try:
        import libvirt  # type: ignore[import-untyped]  # noqa: F401
    except ImportError as exc:
        return f"libvirt-python not importable ({exc}); pip install libvirt-python"
    return None


def probe(socket_path: str, method: str, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """What libvirt's client does: {"outcome": "ok"|"error"|"hang", "value", "error", "alive"}."""
    try:
        done = subprocess.run([sys.executable, str(Path(__file__)), socket_path, method],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"outcome": "hang"}
    if done.returncode != 0 or not done.stdout.strip():
        return {"outcome": "crash", "stderr": done.stderr[-2000:]}
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _main(socket_path: str, method: str) -> None:
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors come back as exceptions
    conn = libvirt.open(f"test+unix:///default?socket={socket_path}")
    out: dict[str, Any] = {}
    try:
        value = getattr(conn, method)()
        out.update(outcome="ok", value=repr(value))
    except libvirt.libvirtError as exc:
        out.update(outcome="error", error=exc.get_error_message(), code=exc.get_error_code())
    except Exception as exc:  # the binding's own failures (e.g. a string it cannot decode)
        out.update(outcome="error", error=f"{type(exc).__name__}: {exc}", code=None)
    try:
        out["alive"] = conn.getLibVersion() > 0
    except libvirt.libvirtError:
        out["alive"] = False
    print(json.dumps(out))


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
