"""Importing a generated module only to marshal loads no transport: asyncio,
threading, sockets and the RPC runtimes (xdrgen.runtime.virnet, .guestfs,
.oncrpc) load when a client is first used, and the client then works against
the real peer.

Each module is imported in a fresh interpreter started with ``-S``: this
machine's site hooks import threading themselves, which would hide a leak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO_ROOT, require_shared
from peers.daemons import Daemon
from peers.fixtures import libvirtd  # noqa: F401  (fixture)
from peers.guestfsd import GuestfsDaemon, guestfsd, running_guestfsd  # noqa: F401  (fixture)
from peers.oncrpc_fixtures import c_demo_server, demo_peers  # noqa: F401  (fixtures)
from peers.rpcgen_peers import CServer
from xdrgen.frontend.options import FrontendOptions
from xdrgen.generator import generate_file

DEMO_X = REPO_ROOT / "protocols" / "demo.x"
GUESTFS_ANNOTATIONS = REPO_ROOT / "protocols" / "annotations" / "guestfs-1.48.toml"
SM_INTER = Path("/usr/include/rpcsvc/sm_inter.x")
LIBVIRT_H = Path("/usr/include/libvirt/libvirt.h")
#: What marshalling must not load (module names, or packages with everything under them).
WATCH = (
    "asyncio", "threading", "socket", "selectors", "ssl", "dataclasses",
    "xdrgen.runtime.virnet", "xdrgen.runtime.guestfs", "xdrgen.runtime.oncrpc",
    "ply", "jinja2", "black",
)  # fmt: skip

PROBE = """\
import json, sys
WATCH = {watch!r}

def loaded():
    return sorted(w for w in WATCH if any(m == w or m.startswith(w + ".") for m in sys.modules))

print(json.dumps(loaded()))
import {module} as m
codec = m.XDR_TYPES[{type_name!r}]
value = codec.decode(codec.encode({value}))
print(json.dumps(loaded()))
{sync_use}
print(json.dumps(loaded()))
import asyncio

async def use_async():
{async_use}

asyncio.run(use_async())
print(json.dumps(loaded()))
"""


def generate(source: Path, out: Path, options: FrontendOptions = FrontendOptions()) -> str:
    """Generate ``source`` (and its .pyc, so each probe imports fast) into ``out``; the module name."""
    result = generate_file(source, out, options=options, pyc=True)
    return result.module_name


def probe(out: Path, module: str, type_name: str, value: str, sync_use: str, async_use: str) -> list[list[str]]:
    """What of WATCH is loaded: at start, after importing and marshalling, after
    using the blocking client, after using the asyncio client."""
    code = PROBE.format(
        watch=WATCH,
        module=module,
        type_name=type_name,
        value=value,
        sync_use=textwrap.dedent(sync_use).strip(),
        async_use=textwrap.indent(textwrap.dedent(async_use).strip(), "    "),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(out)])
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def check_stages(stages: list[list[str]], runtime: str) -> None:
    start, marshalled, sync_used, async_used = stages
    assert start == [], "the interpreter itself loaded some (python -S expected)"
    assert marshalled == [], f"importing and marshalling loaded {marshalled}"
    assert {"threading", "socket", runtime} <= set(sync_used), sync_used
    assert "asyncio" not in sync_used, "the blocking client needs no asyncio"
    assert {"asyncio", runtime} <= set(async_used), async_used
    for never in ("ply", "jinja2", "black"):
        assert never not in async_used


def test_libvirt_remote_protocol(libvirtd: Daemon, tmp_path: Path) -> None:  # noqa: F811
    source = require_shared("libvirt/remote_protocol.x")
    if not LIBVIRT_H.is_file():
        pytest.fail(f"{LIBVIRT_H} missing (libvirt-dev); the libvirtd fixture ran, so it should be installed")
    module = generate(source, tmp_path, FrontendOptions(constants_from=(LIBVIRT_H,)))
    path = libvirtd.socket_path
    stages = probe(
        tmp_path,
        module,
        "remote_domain_get_info_ret",
        "m.remote_domain_get_info_ret(1, 2, 3, 4, 5)",
        f"""
        c = m.RemoteClient.connect_unix({path!r})
        c.connect_open(name="test:///default")
        assert c.connect_get_version().hv_ver == 2, "the test driver's version"
        c.close()
        """,
        f"""
        c = await m.RemoteAsyncClient.connect_unix({path!r})
        await c.connect_open(name="test:///default")
        assert (await c.connect_get_version()).hv_ver == 2
        await c.close()
        """,
    )
    check_stages(stages, "xdrgen.runtime.virnet")


def test_guestfs_protocol(guestfsd: GuestfsDaemon, tmp_path: Path) -> None:  # noqa: F811
    source = require_shared("guestfs/guestfs_protocol.x")
    module = generate(source, tmp_path, FrontendOptions(annotations=(GUESTFS_ANNOTATIONS,)))
    # guestfsd serves one client: a second daemon for the asyncio client.
    with running_guestfsd() as second:
        stages = probe(
            tmp_path,
            module,
            "guestfs_int_statns",
            "m.guestfs_int_statns(*range(22))",
            f"""
            g = m.GuestfsClient.connect({guestfsd.socket_path!r}, timeout=60)
            assert g.echo_daemon(["lean", "sync"]) == "lean sync"
            g.close()
            """,
            f"""
            g = await m.GuestfsAsyncClient.connect({second.socket_path!r}, timeout=60)
            assert await g.echo_daemon(["lean", "async"]) == "lean async"
            await g.close()
            """,
        )
    check_stages(stages, "xdrgen.runtime.guestfs")


def test_demo_onc_program_against_rpcgen_server(c_demo_server: CServer, tmp_path: Path) -> None:  # noqa: F811
    """demo.x has every section: libvirt-style stubs and ONC RPC stubs; its ONC
    client talks to rpcgen's C server for demo.x."""
    module = generate(DEMO_X, tmp_path)
    port = c_demo_server.tcp_port
    stages = probe(
        tmp_path,
        module,
        "demo_dimensions",
        "m.demo_dimensions(1.5, 0.25, 3.0)",
        f"""
        c = m.DemoRpcProgram2Client.connect_tcp("127.0.0.1", {port})
        assert c.demo_add(20, 22) == 42
        c.close()
        """,
        f"""
        c = await m.DemoRpcProgram2AsyncClient.connect_tcp("127.0.0.1", {port})
        assert await c.demo_add(1 << 40, -5) == (1 << 40) - 5
        c.close()
        """,
    )
    check_stages(stages, "xdrgen.runtime.oncrpc")
    # The libvirt-style section stayed unloaded: only the ONC clients were used.
    assert "xdrgen.runtime.virnet" not in stages[3]


def test_rpcsvc_program_imports_lean(tmp_path: Path) -> None:
    """A Debian rpcsvc file (ONC RPC only): lean to import; its client connecting
    (to a socket that listens) loads the runtime."""
    if not SM_INTER.is_file():
        message = f"{SM_INTER} not found (Debian package rpcsvc-proto)"
        if os.environ.get("XDRGEN_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    module = generate(SM_INTER, tmp_path)
    connect = """
        import socket
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        c = m.SmProg1Client.connect_tcp("127.0.0.1", listener.getsockname()[1])
        c.close()
        """
    stages = probe(
        tmp_path,
        module,
        "sm_name",
        "m.sm_name('host')",
        connect,
        connect.replace("m.SmProg1Client.connect_tcp", "await m.SmProg1AsyncClient.connect_tcp"),
    )
    check_stages(stages, "xdrgen.runtime.oncrpc")


def test_lazy_module_rebinds_itself_on_first_use() -> None:
    """The stand-in imports on the first attribute read and replaces itself, so
    later reads are plain module attribute reads."""
    from xdrgen.runtime.lazy import LazyModule, lazy

    namespace: dict[str, object] = {}
    namespace["_m"] = lazy("xdrgen.runtime.virnet.keepalive", namespace, "_m")
    stand_in = namespace["_m"]
    assert isinstance(stand_in, LazyModule) and "not imported yet" in repr(stand_in)
    timer = stand_in.KeepaliveTimer
    module = sys.modules["xdrgen.runtime.virnet.keepalive"]
    assert namespace["_m"] is module and timer is module.KeepaliveTimer
    with pytest.raises(AttributeError):
        stand_in.no_such_name
