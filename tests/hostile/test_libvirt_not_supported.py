"""Our "not supported" answers against libvirtd's, procedure by procedure (issue 11, item 10).

For every procedure the real daemon answers with VIR_ERR_NO_SUPPORT ("this
function is not supported by the connection driver: virX"), our example
daemon (which implements none of them) must send the same error: same code,
error domain, message, ``str1``/``str2`` and ints.  The names and domains come
from libvirt-api.xml, read when the module is generated.

The test driver lacks functions of most object families; the storage-only
daemon adds interfaces, snapshots and checkpoints (and the event
registrations, whose dispatcher calls the ``...RegisterAny`` functions).
"""

from __future__ import annotations

import asyncio
import collections
import sys
from typing import Any

import pytest

from conftest import REPO_ROOT, require_shared
from hostile import wire
from hostile.fixtures import fake  # noqa: F401  (fixture)
from hostile.rawpeer import RawPeer
from hostile.servers import FakeDaemon
from peers.daemons import Daemon
from peers.fixtures import libvirtd, storage_daemon  # noqa: F401  (fixtures)

VIR_ERR_NO_SUPPORT = 3
NOT_SUPPORTED = b"this function is not supported by the connection driver: vir"
#: Families asked of the storage daemon (the others are covered by the test driver).
STORAGE_FAMILIES = ("INTERFACE", "SNAPSHOT", "CHECKPOINT", "CONNECT_DOMAIN_EVENT")
#: libvirtd 9.0 with only the storage driver loaded dies (SIGSEGV) on virInterfaceIsActive,
#: virNetworkIsActive and friends: their public functions do not check for a missing driver.
CRASH_LIBVIRTD = ("_IS_ACTIVE", "_IS_PERSISTENT")


@pytest.fixture(scope="module")
def rp() -> Any:
    require_shared("libvirt/remote_protocol.x")
    sys.path.insert(0, str(REPO_ROOT / "examples"))
    from libvirt_codegen import load_remote_protocol

    return load_remote_protocol()


def zero_args(decode: Any) -> bytes | None:
    """The shortest all-zero payload the args decoder accepts (None when there is none)."""
    if decode is None:
        return b""
    for n in range(0, 4096, 4):
        try:
            decode(bytes(n))
        except Exception:
            continue
        return bytes(n)
    return None


def ask(path: str, uri: bytes, calls: list[tuple[int, bytes]]) -> dict[int, wire.Frame]:
    """Each call on a fresh connection (a call that upsets a daemon costs only itself)."""
    answers = {}
    for proc, payload in calls:
        with RawPeer(path) as peer:
            assert peer.call(1, wire.xdr_opt_string(uri) + wire.xdr_uint(0)).status == wire.OK  # connect_open
            answers[proc] = peer.call(proc, payload, serial=2)
    return answers


def compare(daemon_path: str, uri: bytes, fake: FakeDaemon, rp: Any, wanted: Any) -> collections.Counter[int]:
    from fake_libvirtd import FakeHandler

    handler_methods = vars(FakeHandler)  # what our example daemon implements is not compared
    calls = []
    for number, (method, decode, _encode, _stream) in sorted(rp._REMOTE_DISPATCH.items()):
        name = rp.PROCEDURES[number].name.upper()
        payload = zero_args(decode)
        if payload is None or not wanted(name) or name == "CONNECT_CLOSE" or method in handler_methods:
            continue
        calls.append((number, payload))
    theirs = ask(daemon_path, uri, calls)
    unsupported = {n: f for n, f in theirs.items()
                   if f.status == wire.ERROR and (wire.parse_error(f.payload).message or b"").startswith(NOT_SUPPORTED)}
    ours = ask(fake.socket_path, b"test:///default", [(n, p) for n, p in calls if n in unsupported])
    domains: collections.Counter[int] = collections.Counter()
    differ = []
    for number, frame in unsupported.items():
        expected, got = wire.parse_error(frame.payload), wire.parse_error(ours[number].payload)
        if got != expected:
            differ.append((rp.PROCEDURES[number].name, expected, got))
        domains[expected.domain] += 1
    assert not differ, "answers that differ from libvirtd's:\n" + "\n".join(map(str, differ))
    fake.assert_clean()
    return domains


def test_not_supported_answers_match_the_test_driver(libvirtd: Daemon, fake: FakeDaemon, rp: Any) -> None:
    domains = compare(libvirtd.socket_path, b"test:///default", fake, rp, lambda name: True)
    print(f"\ntest driver: {sum(domains.values())} unsupported procedures compared, by error domain {dict(domains)}")
    assert sum(domains.values()) >= 100
    # Not only the domain family: network 19, node device 22, secret 30, nwfilter 33, storage 18.
    assert {19, 22, 30, 33, 18} <= set(domains)


def test_not_supported_answers_match_the_storage_daemon(storage_daemon: Daemon, fake: FakeDaemon, rp: Any) -> None:
    domains = compare(storage_daemon.socket_path, storage_daemon.uri.encode(), fake, rp,
                      lambda name: any(family in name for family in STORAGE_FAMILIES) and not name.endswith(CRASH_LIBVIRTD))
    print(f"\nstorage daemon: {sum(domains.values())} unsupported procedures compared, by error domain {dict(domains)}")
    # Interfaces 26, snapshots 35, checkpoints 69, and the event registrations (domain 20).
    assert {26, 35, 69, 20} <= set(domains)


def test_api_names_are_not_derived_by_a_rule(rp: Any) -> None:
    """The names libvirt spells differently from the procedure's capitalisation come from libvirt-api.xml."""
    handler = rp.RemoteHandler()

    async def answer(method: str, *args: Any) -> Any:
        try:
            await getattr(handler, method)(*args)
        except Exception as exc:  # the NotSupportedError the default method raises
            return exc
        raise AssertionError(f"{method} did not fail")

    cases = {
        "domain_get_xml_desc": ("virDomainGetXMLDesc", 20),
        "network_lookup_by_uuid": ("virNetworkLookupByUUID", 19),
        "nwfilter_define_xml": ("virNWFilterDefineXML", 33),
        "node_device_lookup_scsi_host_by_wwn": ("virNodeDeviceLookupSCSIHostByWWN", 22),
        "connect_domain_event_callback_register_any": ("virConnectDomainEventRegisterAny", 20),
    }
    for method, (api, domain) in cases.items():
        args = (None,) * (getattr(handler, method).__code__.co_argcount - 1)
        err = asyncio.run(answer(method, *args))
        assert (err.code, err.domain, err.str2) == (VIR_ERR_NO_SUPPORT, domain, api), method
