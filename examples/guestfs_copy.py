"""Copy files in and out of a libguestfs appliance with the generated guestfs client.

    python examples/guestfs_copy.py --socket SOCK COMMAND... [COMMAND...]

    put LOCAL REMOTE     upload a file (FileIn)
    get REMOTE LOCAL     download a file (FileOut)
    mkdir DIRECTORY      mkdir_p
    ls DIRECTORY         list names (ls0, a FileOut of NUL-terminated names)
    tar DIRECTORY LOCAL  a gzip tarball (tar_out with its optional argument compress)

for example ``put data.bin /data.bin ls / get /data.bin copy.bin``.  The
commands run in order on one connection (guestfsd serves one client).  ``SOCK``
is guestfsd's unix socket (``guestfsd --listen --channel SOCK``, or the channel
of a running appliance).  ``--asyncio`` uses the asyncio client
instead of the blocking one.  Long transfers print the daemon's progress on
stderr; Ctrl-C cancels the transfer and leaves the connection usable (the
example then checks it with ``echo_daemon``).  The client module is generated
at start from libguestfs 1.48's guestfs_protocol.x and the annotation file
protocols/annotations/guestfs-1.48.toml (``XDRGEN_GUESTFS_X`` overrides the .x).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from xdrgen.build.loader import load_generated
from xdrgen.frontend.options import FrontendOptions
from xdrgen.runtime.guestfs import GuestfsCancelled, GuestfsRuntimeError
from xdrgen.runtime.guestfs.events import ProgressNotice
from xdrgen.runtime.guestfs.transfer import CancelToken

REPO = Path(__file__).resolve().parents[1]
DEFAULT_X = REPO.parent / "shared" / "protocols" / "guestfs" / "guestfs_protocol.x"
ANNOTATIONS = REPO / "protocols" / "annotations" / "guestfs-1.48.toml"


def load_client_module() -> ModuleType:
    source = Path(os.environ.get("XDRGEN_GUESTFS_X", DEFAULT_X))
    return load_generated(source, FrontendOptions(annotations=(ANNOTATIONS,)))


def show_progress(notice: ProgressNotice) -> None:
    if notice.total:
        print(f"  {100 * notice.position // notice.total:3d}% of {notice.total} bytes", file=sys.stderr)


#: Command -> how many paths it takes.
ARITY = {"put": 2, "get": 2, "mkdir": 1, "ls": 1, "tar": 2}
Command = tuple[str, list[str]]


def parse_commands(words: list[str]) -> list[Command]:
    commands: list[Command] = []
    while words:
        name, words = words[0], words[1:]
        if name not in ARITY:
            raise ValueError(f"unknown command {name!r} (commands: {', '.join(ARITY)})")
        if len(words) < ARITY[name]:
            raise ValueError(f"{name} takes {ARITY[name]} path(s)")
        commands.append((name, words[: ARITY[name]]))
        words = words[ARITY[name] :]
    return commands


def listing(names: bytes) -> str:
    return " ".join(sorted(n.decode(errors="replace") for n in names.split(b"\0") if n))


def run_sync(gfc: ModuleType, socket_path: str, commands: list[Command], cancel: CancelToken) -> None:
    with gfc.GuestfsClient.connect(socket_path) as g:
        for name, paths in commands:
            try:
                print(f"{name}: {sync_command(g, name, paths, cancel)}")
            except GuestfsCancelled:
                print(f"{name}: cancelled; the daemon still answers: {g.echo_daemon(['still', 'here'])}")
                return


def sync_command(g: Any, name: str, paths: list[str], cancel: CancelToken) -> str:
    options = {"progress": show_progress, "cancel": cancel}
    if name == "put":
        g.upload(paths[0], paths[1], **options)
        return f"{g.statns(paths[1]).st_size} bytes"
    if name == "get":
        return f"{g.download(paths[0], paths[1], **options)} bytes"
    if name == "mkdir":
        g.mkdir_p(paths[0])
        return paths[0]
    if name == "ls":
        names = bytearray()
        g.ls0(paths[0], names)
        return listing(bytes(names))
    return f"{g.tar_out(paths[0], paths[1], compress='gzip', **options)} bytes of gzip tarball"


async def run_asyncio(gfc: ModuleType, socket_path: str, commands: list[Command], cancel: CancelToken) -> None:
    async with await gfc.GuestfsAsyncClient.connect(socket_path) as g:
        for name, paths in commands:
            try:
                print(f"{name}: {await async_command(g, name, paths, cancel)}")
            except GuestfsCancelled:
                print(f"{name}: cancelled; the daemon still answers: {await g.echo_daemon(['still', 'here'])}")
                return


async def async_command(g: Any, name: str, paths: list[str], cancel: CancelToken) -> str:
    options = {"progress": show_progress, "cancel": cancel}
    if name == "put":
        await g.upload(paths[0], paths[1], **options)
        return f"{(await g.statns(paths[1])).st_size} bytes"
    if name == "get":
        return f"{await g.download(paths[0], paths[1], **options)} bytes"
    if name == "mkdir":
        await g.mkdir_p(paths[0])
        return paths[0]
    if name == "ls":
        return listing(b"".join([bytes(block) async for block in g.ls0_iter(paths[0])]))
    return f"{await g.tar_out(paths[0], paths[1], compress='gzip', **options)} bytes of gzip tarball"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--socket", required=True, help="guestfsd's unix socket")
    parser.add_argument("--asyncio", action="store_true", help="use the asyncio client")
    parser.add_argument("words", nargs="+", metavar="COMMAND", help="put, get, mkdir, ls or tar, with their paths")
    args = parser.parse_args(argv)
    try:
        commands = parse_commands(args.words)
    except ValueError as exc:
        parser.error(str(exc))
    gfc = load_client_module()
    cancel = CancelToken()
    signal.signal(signal.SIGINT, lambda signum, frame: cancel.cancel())
    try:
        if args.asyncio:
            asyncio.run(run_asyncio(gfc, args.socket, commands, cancel))
        else:
            run_sync(gfc, args.socket, commands, cancel)
    except (OSError, GuestfsRuntimeError) as exc:
        print(f"guestfs_copy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
