"""Hostile server vs the GENERATED libvirt clients (sync and asyncio): bad replies to calls.

Each case makes a raw-socket server (peers/hostile_libvirtd.py) misbehave on
one procedure and asserts what our client does: the call returns, the call
fails and the connection stays (error), the connection closes, or the call
gets no answer (only where the peer stalls: rpc_timeout then fires).  The
expected outcome is libvirt's: the same server is fed to libvirt-python's C
client (peers/libvirt_python_probe.py) and its outcome must be ours.  Every
case also checks that a bystander connection to the same server is
unaffected, and that nothing is left unhandled (conftest).
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from conftest import REPO_ROOT, require_shared
from peers import hostile_libvirtd as h
from peers.hostile_libvirtd import WAIT, Call, HostileLibvirtd, Peer, bystander
from peers.libvirt_python_probe import libvirt_python_available, probe
from xdrgen.runtime.errors import XdrDecodeError
from xdrgen.runtime.virnet.errors import (
    BadMessageError,
    CallTimeout,
    ConnectionClosed,
    LibvirtError,
    PayloadDecodeError,
    ProtocolError,
    VirNetError,
)

sys.path.insert(0, str(REPO_ROOT / "examples"))
from libvirt_codegen import load_remote_protocol  # noqa: E402

FLAVOURS = ["sync", "asyncio"]


@pytest.fixture(scope="module")
def rp() -> Any:
    require_shared("libvirt/remote_protocol.x")
    return load_remote_protocol()


def require_libvirt_python() -> None:
    reason = libvirt_python_available()
    if reason is None:
        return
    if os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
        pytest.fail(reason + " and XDRGEN_REQUIRE_PEERS=1")
    pytest.skip(reason)


def compare_with_libvirt_python() -> bool:
    """Whether a test that checks ours also compares with libvirt's client: always
    under XDRGEN_REQUIRE_PEERS=1 (a missing libvirt-python fails the test there),
    else when it is installed."""
    if os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
        require_libvirt_python()
    return libvirt_python_available() is None


# ----------------------------------------------------------------- ours


def run_ours(rp: Any, path: str, flavour: str, method: str, **kwargs: Any) -> dict[str, Any]:
    """One call through our generated client: outcome ok / error / hang, and whether the connection lives."""
    if flavour == "sync":
        with rp.RemoteClient.connect_unix(path) as c:
            out = _classify(lambda: getattr(c, method)(**kwargs, rpc_timeout=WAIT))
            out["alive"] = h.alive(c)
            return out

    async def run() -> dict[str, Any]:
        async with await rp.RemoteAsyncClient.connect_unix(path) as c:
            out: dict[str, Any]
            try:
                out = {"outcome": "ok", "value": await getattr(c, method)(**kwargs, rpc_timeout=WAIT)}
            except CallTimeout as exc:
                out = {"outcome": "hang", "error": exc}
            except Exception as exc:
                out = {"outcome": "error", "error": exc}
            out["alive"] = await h.alive_async(c)
            return out

    return asyncio.run(run())


def _classify(fn: Callable[[], Any]) -> dict[str, Any]:
    try:
        return {"outcome": "ok", "value": fn()}
    except CallTimeout as exc:
        return {"outcome": "hang", "error": exc}
    except Exception as exc:
        return {"outcome": "error", "error": exc}


def domains_ret(rp: Any, *names: bytes) -> bytes:
    """A remote_connect_list_all_domains_ret with these raw name bytes (UTF-8 or not)."""
    body = struct.pack(">I", len(names))
    for i, name in enumerate(names):
        body += h.xdr_bytes(name) + bytes(range(i, i + 16)) + struct.pack(">i", i + 1)
    return body + struct.pack(">I", len(names))


# ----------------------------------------------------------------- cases

LIST = h.PROC_CONNECT_LIST_ALL_DOMAINS


def answer(proc: int, act: Callable[[Peer, Call, Any], None]) -> Callable[[Any], h.Script]:
    def make(rp: Any) -> h.Script:
        def script(peer: Peer, call: Call) -> bool:
            if call.type == h.CALL and call.proc == proc:
                act(peer, call, rp)
                return True
            return False
        return script
    return make


def stray_stream_packets_then_reply(p: Peer, c: Call, rp: Any) -> None:
    p.send(h.frame(211, h.STREAM, c.serial + 77, h.CONTINUE, b"stray data"))
    p.send(h.frame(211, h.STREAM, c.serial + 78, h.ERROR, b"junk"))
    p.reply(c, domains_ret(rp, b"dom"))


def error_event_then_reply(p: Peer, c: Call, rp: Any) -> None:
    p.send(h.frame(h.PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE, h.MESSAGE, 0, h.ERROR))
    p.reply(c, domains_ret(rp, b"dom"))


def reply_a_byte_at_a_time(p: Peer, c: Call, rp: Any) -> None:
    for b in h.frame(LIST, h.REPLY, c.serial, h.OK, domains_ret(rp, b"slow")):
        p.send(bytes([b]))
        time.sleep(0.001)


#: name -> (script, expected outcome of ours and libvirt's, connection alive afterwards)
REPLY_CASES: dict[str, tuple[Callable[[Any], h.Script], str, bool]] = {
    "truncated payload": (answer(LIST, lambda p, c, rp: p.reply(c, domains_ret(rp, b"dom")[:-6])), "error", True),
    "wrong procedure in the reply": (answer(LIST, lambda p, c, rp: p.reply(c, domains_ret(rp), proc=LIST + 1)), "error", True),
    "status CONTINUE on a reply": (answer(LIST, lambda p, c, rp: p.reply(c, status=h.CONTINUE)), "error", True),
    "remote_error that does not decode": (answer(LIST, lambda p, c, rp: p.error(c, b"\0\0\0\1\0\0")), "error", True),
    "remote_error with invalid UTF-8": (
        answer(LIST, lambda p, c, rp: p.error(c, h.remote_error(42, 12, b"no \xff\xfe domain", str1=b"\xc3("))), "error", True),
    "reply for a serial nobody waits for": (answer(LIST, lambda p, c, rp: p.reply(c, domains_ret(rp), serial=c.serial + 1000)), "error", False),
    "stream packet for no stream, then the reply": (answer(LIST, stray_stream_packets_then_reply), "ok", True),
    "event with status ERROR, then the reply": (answer(LIST, error_event_then_reply), "ok", True),
    "unknown message type": (answer(LIST, lambda p, c, rp: p.reply(c, domains_ret(rp), mtype=9)), "error", False),
    "unknown status": (answer(LIST, lambda p, c, rp: p.reply(c, domains_ret(rp), status=7)), "error", True),
    "length word beyond the maximum": (answer(LIST, lambda p, c, rp: p.send(
        h.frame(LIST, h.REPLY, c.serial, h.OK, domains_ret(rp), length=0xFFFFFFF0))), "error", False),
    "length word below the header size": (answer(LIST, lambda p, c, rp: p.send(
        h.frame(LIST, h.REPLY, c.serial, h.OK, length=8) + b"\0" * 64)), "error", False),
    "reply from another program": (answer(LIST, lambda p, c, rp: p.send(
        h.frame(LIST, h.REPLY, c.serial, h.OK, domains_ret(rp), prog=0x20008087))), "error", False),
    "invalid UTF-8 in domain names": (answer(LIST, lambda p, c, rp: p.reply(c, domains_ret(rp, b"\xff\xfe", b"ok"))), "ok", True),
    "slow sender (a byte at a time)": (answer(LIST, reply_a_byte_at_a_time), "ok", True),
    "reply withheld": (answer(LIST, lambda p, c, rp: None), "hang", True),
}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("case", sorted(REPLY_CASES))
def test_bad_reply(rp: Any, case: str, flavour: str) -> None:
    make, expected, alive = REPLY_CASES[case]
    with HostileLibvirtd(make(rp)) as server, bystander(rp, server.path):
        ours = run_ours(rp, server.path, flavour, "connect_list_all_domains", need_results=1)
        assert ours["outcome"] == expected, ours
        assert ours["alive"] is alive, ours
        if expected == "error":
            error = ours["error"]
            assert isinstance(error, VirNetError), repr(error)  # one family: what lsdom.py catches
            wanted = LibvirtError if "remote_error with" in case else BadMessageError if alive else (
                ProtocolError, ConnectionClosed)
            assert isinstance(error, wanted), repr(error)
        if case == "truncated payload":
            assert isinstance(ours["error"], PayloadDecodeError) and isinstance(ours["error"], XdrDecodeError)
            assert ours["error"].type_name == "remote_connect_list_all_domains_ret"
        if case == "invalid UTF-8 in domain names":
            names = [d.name for d in ours["value"].domains]
            assert [n.encode("utf-8", "surrogateescape") for n in names] == [b"\xff\xfe", b"ok"]


def test_remote_error_with_invalid_utf8_keeps_every_byte(rp: Any) -> None:
    make, _, _ = REPLY_CASES["remote_error with invalid UTF-8"]
    with HostileLibvirtd(make(rp)) as server:
        error = run_ours(rp, server.path, "sync", "connect_list_all_domains", need_results=1)["error"]
    assert isinstance(error, LibvirtError) and (error.code, error.domain) == (42, 12)
    assert error.message is not None and error.message.encode("utf-8", "surrogateescape") == b"no \xff\xfe domain"
    assert error.str1 is not None and error.str1.encode("utf-8", "surrogateescape") == b"\xc3("


#: How long libvirt's client is watched waiting for a reply that never comes.
WITHHELD_REPLY_WAIT = 3.0


@pytest.mark.parametrize("case", sorted(REPLY_CASES))
def test_libvirt_client_agrees(rp: Any, case: str) -> None:
    """libvirt's own client (libvirt-python) against the same server: same outcome, same fate."""
    require_libvirt_python()
    make, expected, alive = REPLY_CASES[case]
    if expected == "hang":
        # libvirt's client has no call timeout: still waiting after a while is its outcome
        # (ours gives up at rpc_timeout, tested above).
        with HostileLibvirtd(make(rp)) as server:
            theirs = probe(server.path, "listAllDomains", timeout=WITHHELD_REPLY_WAIT)
        assert theirs["outcome"] == "hang", theirs
        return
    with HostileLibvirtd(make(rp)) as server:
        theirs = probe(server.path, "listAllDomains")
    assert theirs["outcome"] == expected, theirs
    assert theirs["alive"] is alive, theirs


# ------------------------------------------------- disconnects, half frames


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("cut", [0, 2, 4, 16, 28, 40, -1])
def test_disconnect_at_every_point_of_a_reply(rp: Any, flavour: str, cut: int) -> None:
    def script(peer: Peer, call: Call) -> bool:
        if call.type == h.CALL and call.proc == LIST:
            whole = h.frame(LIST, h.REPLY, call.serial, h.OK, domains_ret(rp, b"dom"))
            peer.send(whole[: len(whole) - 1 if cut < 0 else cut])
            peer.close()
            return True
        return False

    with HostileLibvirtd(script) as server, bystander(rp, server.path):
        ours = run_ours(rp, server.path, flavour, "connect_list_all_domains", need_results=1)
        assert ours["outcome"] == "error" and isinstance(ours["error"], ConnectionClosed), ours
        assert ours["alive"] is False
        if cut in (0, 16, -1) and flavour == "sync" and compare_with_libvirt_python():
            theirs = probe(server.path, "listAllDomains")
            assert (theirs["outcome"], theirs["alive"]) == ("error", False), theirs


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_huge_declared_length_costs_only_bytes_received(rp: Any, flavour: str) -> None:
    """A 32 MiB length word followed by 100 bytes and silence: the call times out, memory stays small."""

    def script(peer: Peer, call: Call) -> bool:
        if call.type == h.CALL and call.proc == LIST:
            peer.send(h.frame(LIST, h.REPLY, call.serial, h.OK, b"\0" * 100, length=32 << 20))
            return True
        return False

    with HostileLibvirtd(script) as server, bystander(rp, server.path):
        tracemalloc.start()
        try:
            ours = run_ours(rp, server.path, flavour, "connect_list_all_domains", need_results=1)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert ours["outcome"] == "hang"
        # Nothing can answer after a frame that never completes: the connection is stuck, as libvirt's is.
        assert ours["alive"] is False
        assert peak < 8 << 20, f"{peak} bytes allocated for a frame of which 100 bytes arrived"


# ------------------------------------------------------------------ fds


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_count_settles(limit: int, timeout: float = 5.0) -> bool:
    """Whether this process's open fds come down to ``limit`` within ``timeout``."""
    deadline = time.monotonic() + timeout
    while fd_count() > limit:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_reply_carrying_fds_nobody_asked_for(rp: Any, flavour: str) -> None:
    """REPLY_WITH_FDS to a plain call: the call succeeds and the fds are closed (libvirt does the same)."""
    r, w = os.pipe()

    def script(peer: Peer, call: Call) -> bool:
        if call.type == h.CALL and call.proc == h.PROC_CONNECT_GET_VERSION:
            peer.send(h.frame(call.proc, h.REPLY_WITH_FDS, call.serial, h.OK, struct.pack(">Iq", 2, 77)))
            peer.send_fds([r, w])
            return True
        return False

    try:
        with HostileLibvirtd(script) as server, bystander(rp, server.path):
            before = fd_count()
            for _ in range(5):
                ours = run_ours(rp, server.path, flavour, "connect_get_version")
                assert ours["outcome"] == "ok" and ours["value"].hv_ver == 77 and ours["alive"], ours
            # Nothing leaked; the server thread may still be closing its side of the
            # last connection, so give the count a moment to settle.
            assert fd_count_settles(before), (fd_count(), before)
            if compare_with_libvirt_python():
                theirs = probe(server.path, "getVersion")
                assert (theirs["outcome"], theirs["value"], theirs["alive"]) == ("ok", "77", True), theirs
    finally:
        os.close(r)
        os.close(w)


def test_reply_announcing_fds_that_never_come_closes_the_sync_connection(rp: Any) -> None:
    def script(peer: Peer, call: Call) -> bool:
        if call.type == h.CALL and call.proc == h.PROC_CONNECT_GET_VERSION:
            peer.send(h.frame(call.proc, h.REPLY_WITH_FDS, call.serial, h.OK, struct.pack(">Iq", 1, 77)) + b"\0")
            return True
        return False

    with HostileLibvirtd(script) as server, bystander(rp, server.path):
        ours = run_ours(rp, server.path, "sync", "connect_get_version")
        assert ours["outcome"] == "error" and isinstance(ours["error"], ProtocolError), ours
        assert "fd carrier bytes" in str(ours["error"]) and ours["alive"] is False
        if compare_with_libvirt_python():
            theirs = probe(server.path, "getVersion")
            assert (theirs["outcome"], theirs["alive"]) == ("error", False), theirs


# --------------------------------------------------------- seeded bodies


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_1000_seeded_random_reply_bodies_on_one_connection(rp: Any, flavour: str) -> None:
    """Random and mutated reply bodies: each call returns a value or raises PayloadDecodeError;
    the connection survives all of them."""
    import random

    rng = random.Random(11)
    valid = domains_ret(rp, b"alpha", b"beta", b"gamma")

    def body() -> bytes:
        kind = rng.randrange(3)
        if kind == 0:
            return rng.randbytes(rng.randrange(0, 120))
        mutated = bytearray(valid)
        for _ in range(rng.randrange(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        return bytes(mutated[: rng.randrange(len(mutated) + 1)] if kind == 1 else mutated)

    def script(peer: Peer, call: Call) -> bool:
        if call.type == h.CALL and call.proc == LIST:
            peer.reply(call, body())
            return True
        return False

    decoded = failed = 0
    with HostileLibvirtd(script) as server:
        if flavour == "sync":
            with rp.RemoteClient.connect_unix(server.path) as c:
                for _ in range(1000):
                    try:
                        c.connect_list_all_domains(need_results=1, rpc_timeout=WAIT)
                        decoded += 1
                    except PayloadDecodeError:
                        failed += 1
                assert c.connect_get_lib_version(rpc_timeout=WAIT).lib_ver == h.LIB_VERSION
        else:

            async def run() -> tuple[int, int]:
                async with await rp.RemoteAsyncClient.connect_unix(server.path) as c:
                    results = await asyncio.gather(
                        *(c.connect_list_all_domains(need_results=1, rpc_timeout=WAIT) for _ in range(1000)),
                        return_exceptions=True,
                    )
                    assert all(isinstance(r, (rp.remote_connect_list_all_domains_ret, PayloadDecodeError))
                               for r in results), {type(r) for r in results}
                    assert (await c.connect_get_lib_version(rpc_timeout=WAIT)).lib_ver == h.LIB_VERSION
                    bad = sum(isinstance(r, PayloadDecodeError) for r in results)
                    return 1000 - bad, bad

            decoded, failed = asyncio.run(run())
    assert decoded + failed == 1000 and decoded > 0 and failed > 500


# ------------------------------------------------------------- lsdom


def test_lsdom_reports_a_truncated_reply_without_a_traceback(rp: Any) -> None:
    import subprocess

    make, _, _ = REPLY_CASES["truncated payload"]
    with HostileLibvirtd(make(rp)) as server:
        done = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "lsdom.py"), "--socket", server.path],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done
    assert done.stderr.startswith("lsdom: reply to procedure 273: remote_connect_list_all_domains_ret"), done.stderr
    assert "Traceback" not in done.stderr


def test_lsdom_prints_names_that_are_not_utf8_byte_for_byte(rp: Any) -> None:
    import subprocess

    def script(peer: Peer, call: Call) -> bool:
        if call.type == h.CALL and call.proc == LIST:
            peer.reply(call, domains_ret(rp, b"caf\xe9"))
            return True
        if call.type == h.CALL and call.proc == 212:  # REMOTE_PROC_DOMAIN_GET_STATE
            peer.reply(call, struct.pack(">ii", 1, 0))
            return True
        return False

    with HostileLibvirtd(script) as server:
        done = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "lsdom.py"), "--socket", server.path],
                              capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"1 caf\xe9 running\n"
