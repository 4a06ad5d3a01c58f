"""The GENERATED libvirt client against a real libvirtd (test:///default).

The client is generated at test time from ../shared/protocols/libvirt/
remote_protocol.x (examples/libvirt_codegen.py); nothing here encodes a
payload by hand.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT, require_shared
from peers.daemons import Daemon
from peers.fixtures import libvirtd  # noqa: F401  (fixture)
from xdrgen.runtime.virnet.errors import LibvirtError, NotSupportedError

sys.path.insert(0, str(REPO_ROOT / "examples"))
from libvirt_codegen import load_remote_protocol  # noqa: E402

SCREENSHOT = Path("/usr/share/libvirt/test-screenshot.png")
WAIT = 20.0  # bound for waiting on the daemon's asynchronous traffic
FEATURE_PROGRAM_KEEPALIVE = 10
# virDomainEventType
EVENT_DEFINED, EVENT_UNDEFINED, EVENT_STARTED, EVENT_SUSPENDED, EVENT_RESUMED, EVENT_STOPPED = 0, 1, 2, 3, 4, 5
VIR_DOMAIN_EVENT_ID_LIFECYCLE = 0
VIR_DOMAIN_RUNNING, VIR_DOMAIN_SHUTOFF = 1, 5

DOMAIN_XML = """<domain type='test'>
  <name>{name}</name>
  <memory unit='KiB'>65536</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
</domain>"""


@pytest.fixture(scope="module")
def rp() -> Any:
    require_shared("libvirt/remote_protocol.x")
    return load_remote_protocol()


def virsh(daemon: Daemon, *args: str) -> str:
    uri = f"test+unix:///default?socket={daemon.socket_path}"
    done = subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def client(libvirtd: Daemon, rp: Any) -> Iterator[Any]:
    c = rp.RemoteClient.connect_unix(libvirtd.socket_path)
    c.connect_open(name="test:///default")
    yield c
    c.close()


def wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_connect_sequence_as_virsh_does(libvirtd: Daemon, rp: Any) -> None:
    with rp.RemoteClient.connect_unix(libvirtd.socket_path) as c:
        assert c.auth_list().types == [rp.remote_auth_type.REMOTE_AUTH_NONE]  # as configured
        assert c.connect_supports_feature(feature=FEATURE_PROGRAM_KEEPALIVE).supported == 1
        assert c.connection.start_keepalive(interval=5, count=5)
        c.connect_open(name="test:///default", flags=0)
        c.connect_register_close_callback()
        assert c.connect_get_version().hv_ver == 2  # the test driver's version
        lib = c.connect_get_lib_version().lib_ver
        daemon_line = virsh(libvirtd, "version", "--daemon").split("Running against daemon:")[1].split()[0]
        major, minor, micro = (int(x) for x in daemon_line.split("."))
        assert lib == major * 1_000_000 + minor * 1000 + micro
        assert c.connect_get_hostname().hostname == virsh(libvirtd, "hostname").strip()
        c.connect_unregister_close_callback()
        c.connect_close()


def test_list_lookup_and_info(client: Any, rp: Any) -> None:
    listed = client.connect_list_all_domains(need_results=1)
    assert listed.ret == 1 and [d.name for d in listed.domains] == ["test"]
    dom = client.domain_lookup_by_name("test").dom
    assert (dom.name, dom.id, dom.uuid) == ("test", 1, listed.domains[0].uuid)
    assert len(dom.uuid) == 16
    info = client.domain_get_info(dom)
    # The test driver's built-in domain: running, 2 vCPUs, 8 GiB max, 2 GiB used.
    assert (info.state, info.nrVirtCpu, info.maxMem, info.memory) == (VIR_DOMAIN_RUNNING, 2, 8388608, 2097152)
    same = client.domain_lookup_by_name_with(rp.remote_domain_lookup_by_name_args(name="test")).dom
    assert same == dom


def test_define_start_destroy_undefine(client: Any) -> None:
    dom = client.domain_define_xml(DOMAIN_XML.format(name="xdrgen-life")).dom
    assert dom.id == -1
    assert client.domain_get_state(dom).state == VIR_DOMAIN_SHUTOFF
    client.domain_create(dom)
    running = client.domain_lookup_by_name("xdrgen-life").dom
    assert running.id > 0
    assert client.domain_get_state(running).state == VIR_DOMAIN_RUNNING
    client.domain_destroy(running)
    assert client.domain_get_state(dom).state == VIR_DOMAIN_SHUTOFF
    client.domain_undefine(dom)
    with pytest.raises(LibvirtError) as info:
        client.domain_lookup_by_name("xdrgen-life")
    assert info.value.code == 42


def test_failing_call_raises_the_daemons_error(client: Any) -> None:
    with pytest.raises(LibvirtError) as info:
        client.domain_lookup_by_name("no-such-domain")
    err = info.value
    assert not isinstance(err, NotSupportedError)
    assert (err.code, err.domain, err.level) == (42, 12, 2)  # VIR_ERR_NO_DOMAIN, VIR_FROM_TEST, error
    assert err.message == "Domain not found" == str(err)  # what the test driver says
    assert client.connect_get_version().hv_ver == 2  # still usable


def test_screenshot_stream(client: Any) -> None:
    dom = client.domain_lookup_by_name("test").dom
    ret, stream = client.domain_screenshot(dom, screen=0)
    assert ret.mime == "image/png"
    data = bytearray()
    for chunk in stream:
        data += chunk
    stream.finish(WAIT)
    assert len(data) == 33443
    assert bytes(data) == SCREENSHOT.read_bytes()


def test_lifecycle_events_while_other_calls_run(client: Any, rp: Any) -> None:
    test_dom = client.domain_lookup_by_name("test").dom
    # Two callbacks: every domain, and only "test"; handlers are routed by callbackID.
    every = client.connect_domain_event_callback_register_any(eventID=VIR_DOMAIN_EVENT_ID_LIFECYCLE).callbackID
    only_test = client.connect_domain_event_callback_register_any(
        eventID=VIR_DOMAIN_EVENT_ID_LIFECYCLE, dom=test_dom
    ).callbackID
    assert every != only_test
    got_every: list[Any] = []
    got_test: list[Any] = []
    everything: list[Any] = []
    client.on_domain_event_callback_lifecycle(got_every.append, callback_id=every)
    client.on_domain_event_callback_lifecycle(got_test.append, callback_id=only_test)
    stop = client.on_domain_event_callback_lifecycle(everything.append)

    versions: list[int] = []
    done = threading.Event()

    def busy() -> None:  # ordinary calls interleaved with the events
        while not done.is_set():
            versions.append(client.connect_get_version().hv_ver)

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        dom = client.domain_define_xml(DOMAIN_XML.format(name="xdrgen-events")).dom
        client.domain_create(dom)
        client.domain_destroy(dom)
        client.domain_undefine(dom)
        client.domain_suspend(test_dom)
        client.domain_resume(test_dom)
        wait_until(lambda: len(got_every) >= 6 and len(got_test) >= 2, "the lifecycle events")
    finally:
        done.set()
        worker.join(WAIT)
    assert versions and set(versions) == {2}
    assert [(m.msg.dom.name, m.msg.event) for m in got_every] == [
        ("xdrgen-events", EVENT_DEFINED),
        ("xdrgen-events", EVENT_STARTED),
        ("xdrgen-events", EVENT_STOPPED),
        ("xdrgen-events", EVENT_UNDEFINED),
        ("test", EVENT_SUSPENDED),
        ("test", EVENT_RESUMED),
    ]
    assert [(m.msg.dom.name, m.msg.event) for m in got_test] == [("test", EVENT_SUSPENDED), ("test", EVENT_RESUMED)]
    assert {m.callbackID for m in got_every} == {every}
    assert {m.callbackID for m in got_test} == {only_test}
    assert len(everything) == len(got_every) + len(got_test)
    assert not client.bad_events
    stop()
    client.connect_domain_event_callback_deregister_any(callbackID=every)
    client.connect_domain_event_callback_deregister_any(callbackID=only_test)


def test_keepalive_ping_from_the_daemon_is_answered(client: Any) -> None:
    # libvirtd pings a client that asked about keepalive, after 1 s of silence here.
    assert client.connect_supports_feature(feature=FEATURE_PROGRAM_KEEPALIVE).supported == 1
    before = client.connection.pings_answered
    wait_until(lambda: client.connection.pings_answered > before, "a keepalive PING from libvirtd")
    assert client.connection.error is None
    assert client.connect_get_version().hv_ver == 2


def test_lsdom_example_matches_virsh(libvirtd: Daemon, client: Any) -> None:
    # A second, inactive domain, so both id forms and two states show up.
    dom = client.domain_define_xml(DOMAIN_XML.format(name="xdrgen-lsdom")).dom
    try:
        done = subprocess.run(
            [sys.executable, str(REPO_ROOT / "examples" / "lsdom.py"), "--socket", libvirtd.socket_path],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        ours = [line.split(None, 2) for line in done.stdout.splitlines()]
        table = virsh(libvirtd, "list", "--all").splitlines()
        theirs = [line.split(None, 2) for line in table[2:] if line.strip()]
        assert ours == theirs
        assert ["1", "test", "running"] in ours and ["-", "xdrgen-lsdom", "shut off"] in ours
    finally:
        client.domain_undefine(dom)


def test_asyncio_event_iterator_subscribes_when_made(libvirtd: Daemon, rp: Any) -> None:
    """The natural pattern (get the iterator, await domain_suspend, then loop) gets the event (issue 11 item 9)."""
    import asyncio

    async def run() -> list[tuple[str, int]]:
        async with await rp.RemoteAsyncClient.connect_unix(libvirtd.socket_path) as c:
            await c.connect_open(name="test:///default")
            cid = (await c.connect_domain_event_callback_register_any(eventID=VIR_DOMAIN_EVENT_ID_LIFECYCLE)).callbackID
            events = c.domain_event_callback_lifecycle_events(callback_id=cid)
            dom = (await c.domain_lookup_by_name("test")).dom
            await c.domain_suspend(dom)
            await c.domain_resume(dom)
            await asyncio.sleep(0.5)  # other work before the loop starts: the events arrive meanwhile
            got = []
            async for m in events:
                got.append((m.msg.dom.name, m.msg.event))
                if len(got) == 2:
                    break
            events.close()
            await c.connect_domain_event_callback_deregister_any(callbackID=cid)
            assert not c.bad_events
            return got

    assert asyncio.run(asyncio.wait_for(run(), WAIT)) == [("test", EVENT_SUSPENDED), ("test", EVENT_RESUMED)]
