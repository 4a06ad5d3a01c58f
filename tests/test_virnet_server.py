"""The server role (xdrgen.runtime.virnet.server) with real virsh as the client."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from peers.xdrmini import Reader, Writer, procedure_numbers
from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.constants import FEATURE_PROGRAM_KEEPALIVE
from xdrgen.runtime.virnet.core import StreamDirection
from xdrgen.runtime.virnet.errors import LibvirtError, unknown_procedure_error
from xdrgen.runtime.virnet.server import ServerConnection, serve_unix

WAIT = 30.0
UUID = bytes(range(16))


@pytest.fixture(scope="module")
def procs() -> dict[str, int]:
    from conftest import require_shared

    return procedure_numbers(require_shared("libvirt/remote_protocol.x"))


def virsh_or_skip() -> str:
    path = shutil.which("virsh")
    if path is None:
        if os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
            pytest.fail("virsh not installed and XDRGEN_REQUIRE_PEERS=1")
        pytest.skip("virsh not installed (Debian package libvirt-clients)")
    return path


def make_handler(procs: dict[str, int], seen: list[str], image: bytes):  # type: ignore[no-untyped-def]
    names = {v: k for k, v in procs.items()}

    async def handler(conn: ServerConnection, call: ev.IncomingCall) -> bytes | None:
        name = names.get(call.proc, str(call.proc)).removeprefix("REMOTE_PROC_")
        seen.append(name)
        if name == "AUTH_LIST":
            return Writer().uint(1).int(0).bytes()
        if name == "CONNECT_SUPPORTS_FEATURE":
            return Writer().int(1 if Reader(call.payload).int() == FEATURE_PROGRAM_KEEPALIVE else 0).bytes()
        if name in ("CONNECT_OPEN", "CONNECT_CLOSE", "CONNECT_REGISTER_CLOSE_CALLBACK", "CONNECT_UNREGISTER_CLOSE_CALLBACK"):
            return b""
        if name == "CONNECT_GET_VERSION":
            return Writer().uhyper(1002003).bytes()
        if name == "CONNECT_GET_LIB_VERSION":
            return Writer().uhyper(9000000).bytes()
        if name == "CONNECT_GET_TYPE":
            return Writer().string("XDRGEN").bytes()
        if name == "DOMAIN_LOOKUP_BY_NAME":
            wanted = Reader(call.payload).string()
            if wanted not in ("pydom", "badshot"):
                raise LibvirtError(42, 12, f"Domain not found: no domain with matching name '{wanted}'")
            return Writer().string(wanted).opaque_fixed(UUID).int(7).bytes()
        if name == "DOMAIN_SCREENSHOT":
            if Reader(call.payload).string() == "badshot":
                raise LibvirtError(55, 10, "Requested operation is not valid: xdrgen handler refuses")
            stream = conn.open_stream(call, StreamDirection.SEND)
            conn.reply(call, Writer().opt_string("image/png").bytes())
            await stream.send(image)
            await stream.send_eof()
            await asyncio.wait_for(stream.finished.wait(), WAIT)
            return None
        raise unknown_procedure_error(call.proc)

    return handler


async def run_virsh(path: str, *args: str) -> tuple[int, str, str]:
    p = await asyncio.create_subprocess_exec(
        virsh_or_skip(), "-c", f"test+unix:///default?socket={path}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(p.communicate(), WAIT)
    assert p.returncode is not None
    return p.returncode, out.decode(), err.decode()


def test_virsh_version_screenshot_and_errors(procs: dict[str, int]) -> None:
    virsh_or_skip()
    image = hashlib.sha256(b"seed").digest() * 20000  # 640000 bytes: several stream chunks
    seen: list[str] = []
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="xp"))

    async def main() -> None:
        sock = str(root / "sock")
        server = await serve_unix(sock, make_handler(procs, seen, image))
        try:
            rc, out, err = await run_virsh(sock, "version")
            assert rc == 0, err
            assert "Running hypervisor: XDRGEN 1.2.3" in out
            assert seen[:3] == ["AUTH_LIST", "CONNECT_SUPPORTS_FEATURE", "CONNECT_OPEN"]

            rc, out, err = await run_virsh(sock, "screenshot", "pydom", str(root / "shot.png"))
            assert rc == 0, err
            assert (root / "shot.png").read_bytes() == image

            rc, out, err = await run_virsh(sock, "screenshot", "nodom", str(root / "none.png"))
            assert rc != 0
            assert "failed to get domain 'nodom'" in err
            assert seen[-2:] == ["DOMAIN_LOOKUP_BY_NAME", "CONNECT_CLOSE"]

            rc, out, err = await run_virsh(sock, "screenshot", "badshot", str(root / "bad.png"))
            assert rc != 0
            assert "xdrgen handler refuses" in err
        finally:
            server.close()

    try:
        asyncio.run(asyncio.wait_for(main(), 3 * WAIT))
    finally:
        shutil.rmtree(root, ignore_errors=True)
