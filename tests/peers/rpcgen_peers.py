"""rpcgen's C client and server for protocols/demo.x, built with gcc and libtirpc.

``build_demo_peers()`` runs ``rpcgen -N`` (header, XDR routines, client stubs,
server dispatch without main) on demo.x and compiles them with the mains in
``oncrpc_c/`` (demo_server.c, demo_client.c, demo_print.c).  Builds are cached
by content hash beside the reference builds (tests/reference/rpcgen_ref.py),
never in the repository.

``render_*`` give, for decoded Python values, the text demo_print.c prints for
the same C values, so a test can compare what one side sent with what the
other printed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reference.rpcgen_ref import (
    _cache_root,
    _pkg_config_libtirpc,
    _run,
    _tool_versions,
    reference_unavailable,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_X = REPO_ROOT / "protocols" / "demo.x"
SOURCES = Path(__file__).with_name("oncrpc_c")
#: Bump when the recipe changes in a way the hashed inputs do not show.
RECIPE = "1"
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class DemoPeers:
    server: Path
    client: Path


def require_c_peers() -> None:
    """Skip (fail under XDRGEN_REQUIRE_PEERS=1 or _SHARED=1) without rpcgen, gcc, libtirpc."""
    reason = reference_unavailable()
    if reason is None:
        return
    message = f"rpcgen's C demo client/server cannot be built: {reason}"
    if "1" in (os.environ.get("XDRGEN_REQUIRE_PEERS"), os.environ.get("XDRGEN_REQUIRE_SHARED")):
        pytest.fail(message)
    pytest.skip(message)


def build_demo_peers() -> DemoPeers:
    """Build (or reuse) demo_server and demo_client."""
    sources = sorted(SOURCES.iterdir())
    digest = hashlib.sha256()
    for part in [RECIPE, DEMO_X.read_text(), _tool_versions()] + [f"{p.name}\0{p.read_text()}" for p in sources]:
        digest.update(part.encode())
        digest.update(b"\0\1")
    root = _cache_root().parent / "rpcgen-peers"
    target = root / digest.hexdigest()[:32]
    if not (target / "demo_client").is_file():
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
        try:
            shutil.copyfile(DEMO_X, work / "demo.x")
            for p in sources:
                shutil.copyfile(p, work / p.name)
            for flag, out in (("-h", "demo.h"), ("-c", "demo_xdr.c"), ("-l", "demo_clnt.c"), ("-m", "demo_svc.c")):
                _run(["rpcgen", "-N", flag, "demo.x", "-o", out], work)
            libtirpc = _pkg_config_libtirpc()
            common = ["gcc", "-O2", "-w", "-I."]
            _run([*common, "-o", "demo_server", "demo_server.c", "demo_print.c", "demo_svc.c", "demo_xdr.c", *libtirpc], work)
            _run([*common, "-o", "demo_client", "demo_client.c", "demo_print.c", "demo_clnt.c", "demo_xdr.c", *libtirpc], work)
            try:
                work.rename(target)
            except OSError:
                if not (target / "demo_client").is_file():
                    raise
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    return DemoPeers(target / "demo_server", target / "demo_client")


@dataclass
class CServer:
    """A running demo_server: its ports, and every line it printed so far."""

    process: subprocess.Popen[str]
    tcp_port: int
    udp_port: int
    output: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return self.output.read_text().splitlines()

    def wait_for_lines(self, predicate: Any, count: int, timeout: float = 5.0) -> list[str]:
        """The printed lines matching ``predicate``, once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines() if predicate(line)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.output.parent, ignore_errors=True)


def start_demo_server(peers: DemoPeers) -> CServer:
    """demo_server on 127.0.0.1, ports chosen by the system, output captured in a temp file."""
    work = Path(tempfile.mkdtemp(prefix="xdrgen-cdemo-"))
    out = work / "stdout"
    with open(out, "w") as sink:
        process = subprocess.Popen(
            [str(peers.server)], stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        lines = out.read_text().splitlines()
        if "ready" in lines:
            ports = dict(line.split() for line in lines if line.startswith(("tcp ", "udp ")))
            return CServer(process, int(ports["tcp"]), int(ports["udp"]), out)
        if process.poll() is not None:
            break
        time.sleep(0.02)
    text = out.read_text()
    process.kill()
    process.wait()
    raise RuntimeError(f"demo_server did not start: {text}")


def run_demo_client(peers: DemoPeers, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(peers.client), *args], capture_output=True, text=True, timeout=timeout, check=False)


# -- the text demo_print.c prints, from Python values ------------------------------


def _g17(value: float) -> str:
    return format(value, ".17g")


def render_item(it: Any) -> str:
    dims = "none" if it.dimensions is None else ",".join(
        _g17(v) for v in (it.dimensions.width_m, it.dimensions.height_m, it.dimensions.weight_kg)
    )
    return (
        f"{{uuid={it.uuid.hex()} name={it.name} kind={int(it.kind)} quantity={it.quantity} created={it.created} "
        f"size={it.size_bytes} mode={it.mode} active={int(it.active)} dims={dims} tags=[{','.join(it.tags)}] "
        f"desc={it.description} ratings=[{','.join(map(str, it.ratings))}] "
        f"also=[{','.join(str(int(k)) for k in it.also_kinds)}] counters=[{','.join(map(str, it.counters))}] "
        f"vendor={it.vendor} thumb={it.thumbnail.hex()} sha={it.sha256.hex()}}}"
    )


def render_lookup(r: Any) -> str:
    text = f"status={int(r.status)}"
    if int(r.status) == 0:
        text += " item=" + render_item(r.value)
    return text


def render_maybe_name(m: Any) -> str:
    return f"present=1 name={m.value}" if m.present else "present=0"


def render_option(o: Any) -> str:
    s = o.value
    kind = s.type
    if kind in (1, 2):
        value = str(s.value)
    elif kind == 3:
        value = _g17(s.value)
    elif kind == 4:
        value = s.value
    elif kind == 5:
        value = str(int(s.value))
    else:
        value = "void"
    return f"key={o.key} setting={kind}:{value}"


def render_limit(limit: Any) -> str:
    if limit.revision in (1, 2, 3):
        return f"{limit.revision}:{limit.value}"
    return f"{limit.revision}:void"


def widget(demo: Any) -> Any:
    """The item demo_server.c knows, as a Python value."""
    return demo.demo_item(
        uuid=bytes(range(1, 17)),
        name="widget",
        kind=demo.demo_kind.DEMO_KIND_TOOL,
        quantity=7,
        created=-5,
        size_bytes=1 << 40,
        mode=0o644,
        active=True,
        dimensions=demo.demo_dimensions(width_m=1.5, height_m=0.25, weight_kg=3.0),
        tags=["red", "small"],
        description="a widget",
        ratings=[1, 2, 3],
        also_kinds=[demo.demo_kind.DEMO_KIND_PART],
        counters=[1, 2, 3, 4],
        vendor="acme",
        thumbnail=b"\x01\x02\x03",
        sha256=b"\xab" * 32,
    )
