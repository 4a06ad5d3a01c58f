"""A pretend libvirtd on the generated server skeleton, good enough for real virsh.

    python examples/fake_libvirtd.py --socket /tmp/fake.sock &
    virsh -c 'test+unix:///default?socket=/tmp/fake.sock' list --all

It invents two domains, a storage pool with one volume and a screenshot, and
implements the procedures virsh calls for ``version``, ``list --all``,
``dominfo NAME``, ``screenshot NAME FILE``, ``vol-download`` and
``vol-upload`` (kept in memory, ``--sparse`` too); every other
procedure answers as libvirtd does for a function its driver lacks.  It runs
until SIGTERM or SIGINT.  ``--log`` prints the procedures clients call.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from libvirt_codegen import load_remote_protocol  # noqa: E402
from xdrgen.runtime.virnet.errors import LibvirtError, NotSupportedError  # noqa: E402
from xdrgen.runtime.virnet.sync import Hole  # noqa: E402

rp: Any = load_remote_protocol()

# Values from libvirt's public headers (virDomainState, virStorageVolType, ...).
VIR_DOMAIN_RUNNING = 1
VIR_DOMAIN_PAUSED = 3
VIR_DOMAIN_SHUTOFF = 5
VIR_STORAGE_POOL_RUNNING = 2
VIR_STORAGE_VOL_FILE = 0
VIR_ERR_OPERATION_INVALID = 55
VIR_ERR_NO_DOMAIN = 42
VIR_ERR_NO_STORAGE_POOL = 49
VIR_ERR_NO_STORAGE_VOL = 50
VIR_FROM_TEST = 12
VIR_ERR_SYSTEM_ERROR = 38
VIR_FROM_STREAMS = 38
VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM = 1
#: Largest volume an upload may make (the fake keeps volumes in memory).
VOLUME_MAX = 64 * 1024 * 1024
#: virConnectGetLibVersion: major * 1000000 + minor * 1000 + release.
LIB_VERSION = 9_000_000
HV_VERSION = 2_004_006  # reported as "2.4.6" by virsh
CHUNK = 64 * 1024


@dataclass
class Domain:
    id: int  # -1 when inactive
    name: str
    uuid: bytes
    state: int
    max_mem_kib: int
    mem_kib: int
    vcpus: int
    cpu_time_ns: int
    persistent: bool = True
    autostart: bool = False


def uuid_for(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()[:16]


def invented_png(width: int = 320, height: int = 240) -> bytes:
    """A real PNG (8-bit gray gradient), large enough to need several stream chunks."""
    rows = b"".join(b"\0" + bytes((x * 7 + y * 3) & 0xFF for x in range(width)) for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b"")


def invented_volume(size: int = 3 * 1024 * 1024 + 12345) -> bytes:
    """Deterministic volume content (not all zeros, spans many stream chunks)."""
    block = hashlib.sha256(b"xdrgen fake volume").digest() * 2048
    return (block * (size // len(block) + 1))[:size]


class World:
    """What the fake daemon pretends to manage (shared by all connections)."""

    def __init__(self) -> None:
        self.domains = [
            Domain(1, "web", uuid_for("web"), VIR_DOMAIN_RUNNING, 2097152, 1048576, 2, 123_000_000_000),
            Domain(-1, "db", uuid_for("db"), VIR_DOMAIN_SHUTOFF, 4194304, 4194304, 4, 0),
        ]
        self.pool_name = "fakepool"
        self.pool_uuid = uuid_for(self.pool_name)
        self.volumes = {"disk0.img": invented_volume()}
        self.screenshot = invented_png()

    def domain(self, name: str) -> Domain:
        for d in self.domains:
            if d.name == name:
                return d
        raise LibvirtError(VIR_ERR_NO_DOMAIN, VIR_FROM_TEST, f"Domain not found: no domain with matching name '{name}'")

    def domain_by_uuid(self, uuid: bytes) -> Domain:
        for d in self.domains:
            if d.uuid == bytes(uuid):
                return d
        raise LibvirtError(VIR_ERR_NO_DOMAIN, VIR_FROM_TEST, "Domain not found: no domain with matching uuid")

    def domain_by_id(self, id: int) -> Domain:
        for d in self.domains:
            if d.id == id and id >= 0:
                return d
        raise LibvirtError(VIR_ERR_NO_DOMAIN, VIR_FROM_TEST, f"Domain not found: no domain with matching id {id}")

    def wire_domain(self, d: Domain) -> Any:
        return rp.remote_nonnull_domain(d.name, d.uuid, d.id)

    def wire_pool(self) -> Any:
        return rp.remote_nonnull_storage_pool(self.pool_name, self.pool_uuid)

    def wire_vol(self, name: str) -> Any:
        if name not in self.volumes:
            raise LibvirtError(VIR_ERR_NO_STORAGE_VOL, VIR_FROM_TEST, f"Storage volume not found: no storage vol with matching name '{name}'")
        return rp.remote_nonnull_storage_vol(self.pool_name, name, f"/fake/{self.pool_name}/{name}")


class FakeHandler(rp.RemoteHandler):  # type: ignore[misc]
    """One per client connection; all share the World."""

    def __init__(self, world: World, log: bool) -> None:
        self.world = world
        self.log = log

    # -- connection set-up (what every virsh command starts with)
    async def auth_list(self) -> Any:
        return rp.remote_auth_list_ret([rp.remote_auth_type.REMOTE_AUTH_NONE])

    async def connect_supports_feature(self, args: Any) -> Any:
        # keepalive (10) yes: the runtime answers PINGs; nothing else.
        return rp.remote_connect_supports_feature_ret(1 if args.feature == 10 else 0)

    async def connect_open(self, args: Any) -> None:
        return None

    async def connect_close(self) -> None:
        return None

    async def connect_register_close_callback(self) -> None:
        return None

    async def connect_unregister_close_callback(self) -> None:
        return None

    async def connect_get_uri(self) -> Any:
        return rp.remote_connect_get_uri_ret("test:///default")

    async def connect_get_type(self) -> Any:
        return rp.remote_connect_get_type_ret("Test")

    async def connect_get_version(self) -> Any:
        return rp.remote_connect_get_version_ret(HV_VERSION)

    async def connect_get_lib_version(self) -> Any:
        return rp.remote_connect_get_lib_version_ret(LIB_VERSION)

    async def connect_get_hostname(self) -> Any:
        return rp.remote_connect_get_hostname_ret("fake-host")

    async def node_get_security_model(self) -> Any:
        # No security driver: empty model and DOI (virsh dominfo then skips labels).
        return rp.remote_node_get_security_model_ret([], [])

    # -- domains
    async def connect_list_all_domains(self, args: Any) -> Any:
        doms = [self.world.wire_domain(d) for d in self.world.domains]
        return rp.remote_connect_list_all_domains_ret(doms if args.need_results else [], len(doms))

    async def domain_lookup_by_name(self, args: Any) -> Any:
        return rp.remote_domain_lookup_by_name_ret(self.world.wire_domain(self.world.domain(args.name)))

    async def domain_lookup_by_uuid(self, args: Any) -> Any:
        return rp.remote_domain_lookup_by_uuid_ret(self.world.wire_domain(self.world.domain_by_uuid(args.uuid)))

    async def domain_lookup_by_id(self, args: Any) -> Any:
        return rp.remote_domain_lookup_by_id_ret(self.world.wire_domain(self.world.domain_by_id(args.id)))

    async def domain_get_info(self, args: Any) -> Any:
        d = self.world.domain(args.dom.name)
        return rp.remote_domain_get_info_ret(d.state, d.max_mem_kib, d.mem_kib, d.vcpus, d.cpu_time_ns)

    async def domain_get_state(self, args: Any) -> Any:
        return rp.remote_domain_get_state_ret(self.world.domain(args.dom.name).state, 0)

    async def domain_get_os_type(self, args: Any) -> Any:
        self.world.domain(args.dom.name)
        return rp.remote_domain_get_os_type_ret("hvm")

    async def domain_is_persistent(self, args: Any) -> Any:
        return rp.remote_domain_is_persistent_ret(int(self.world.domain(args.dom.name).persistent))

    async def domain_get_autostart(self, args: Any) -> Any:
        return rp.remote_domain_get_autostart_ret(int(self.world.domain(args.dom.name).autostart))

    async def domain_has_managed_save_image(self, args: Any) -> Any:
        self.world.domain(args.dom.name)
        return rp.remote_domain_has_managed_save_image_ret(0)

    async def domain_get_messages(self, args: Any) -> Any:
        self.world.domain(args.dom.name)
        return rp.remote_domain_get_messages_ret([])

    async def domain_screenshot(self, call: Any, args: Any) -> None:
        if self.world.domain(args.dom.name).state != VIR_DOMAIN_RUNNING:
            raise LibvirtError(VIR_ERR_OPERATION_INVALID, VIR_FROM_TEST, "Requested operation is not valid: domain is not running")
        stream = call.accept(rp.remote_domain_screenshot_ret("image/png"))
        data = memoryview(self.world.screenshot)
        for start in range(0, len(data), CHUNK):
            await stream.send(data[start : start + CHUNK])
        await stream.send_eof()

    # -- storage
    async def storage_pool_lookup_by_name(self, args: Any) -> Any:
        if args.name != self.world.pool_name:
            raise LibvirtError(VIR_ERR_NO_STORAGE_POOL, VIR_FROM_TEST, f"Storage pool not found: no storage pool with matching name '{args.name}'")
        return rp.remote_storage_pool_lookup_by_name_ret(self.world.wire_pool())

    async def storage_pool_is_active(self, args: Any) -> Any:
        return rp.remote_storage_pool_is_active_ret(1)

    async def storage_pool_lookup_by_volume(self, args: Any) -> Any:
        self.world.wire_vol(args.vol.name)
        return rp.remote_storage_pool_lookup_by_volume_ret(self.world.wire_pool())

    async def storage_vol_lookup_by_name(self, args: Any) -> Any:
        return rp.remote_storage_vol_lookup_by_name_ret(self.world.wire_vol(args.name))

    async def storage_vol_lookup_by_path(self, args: Any) -> Any:
        return rp.remote_storage_vol_lookup_by_path_ret(self.world.wire_vol(os.path.basename(args.path)))

    async def storage_vol_get_info(self, args: Any) -> Any:
        size = len(self.world.volumes[self.world.wire_vol(args.vol.name).name])
        return rp.remote_storage_vol_get_info_ret(VIR_STORAGE_VOL_FILE, size, size)

    async def storage_vol_download(self, call: Any, args: Any) -> None:
        content = memoryview(self.world.volumes[self.world.wire_vol(args.vol.name).name])
        end = len(content) if args.length == 0 else min(len(content), args.offset + args.length)
        stream = call.accept(None)
        for start in range(args.offset, end, CHUNK):
            await stream.send(content[start : min(start + CHUNK, end)])
        await stream.send_eof()

    async def storage_vol_upload(self, call: Any, args: Any) -> None:
        name = self.world.wire_vol(args.vol.name).name
        content = bytearray(self.world.volumes[name])
        limit = args.offset + args.length if args.length else VOLUME_MAX
        stream = call.accept(None, sparse=bool(args.flags & VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM))
        pos = args.offset
        while (chunk := await stream.recv()) is not None:
            n = chunk.length if isinstance(chunk, Hole) else len(chunk)
            if pos + n > min(limit, VOLUME_MAX):
                # What libvirtd's file stream says when the data does not fit.
                await stream.fail(LibvirtError(VIR_ERR_SYSTEM_ERROR, VIR_FROM_STREAMS, "cannot write to stream: No space left on device"))
                return
            if len(content) < pos + n:
                content.extend(bytes(pos + n - len(content)))
            content[pos : pos + n] = bytes(n) if isinstance(chunk, Hole) else chunk
            pos += n
        if not stream.aborted:  # finished by the client: keep what it sent
            self.world.volumes[name] = bytes(content)


class LoggingServer(rp.RemoteServer):  # type: ignore[misc]
    """Prints every call and whether the handler implemented it."""

    def __init__(self, world: World, log: bool) -> None:
        super().__init__(lambda: FakeHandler(world, log))
        self.log = log

    async def __call__(self, connection: Any, call: Any) -> Any:
        name = rp.PROCEDURES[call.proc].name if call.proc in rp.PROCEDURES else str(call.proc)
        try:
            result = await super().__call__(connection, call)
        except NotSupportedError:
            if self.log:
                print(f"UNSUPPORTED {call.proc} {name}", file=sys.stderr, flush=True)
            raise
        if self.log:
            print(f"call {call.proc} {name}", file=sys.stderr, flush=True)
        return result


async def main_async(socket_path: str, log: bool, max_clients: int) -> None:
    world = World()
    # A stale socket file (a daemon that was killed) is replaced atomically; a
    # live daemon's is refused.  On close the file is removed if it is still ours.
    server = await LoggingServer(world, log).serve_unix(socket_path, max_clients=max_clients)
    os.chmod(socket_path, 0o777)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on {socket_path}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="unix socket path to listen on")
    parser.add_argument("--log", action="store_true", help="print each call on stderr")
    parser.add_argument("--max-clients", type=int, default=5000, help="connections served at once (libvirtd's max_clients)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(main_async(args.socket, args.log, args.max_clients))
    except OSError as exc:
        print(f"fake_libvirtd: cannot listen on {args.socket}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
