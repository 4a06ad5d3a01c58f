"""Seeded random argument bodies: every call is answered, by libvirtd 9.0 and by ours.

The same (procedure, payload) pairs go to real libvirtd (test driver) and to
examples/fake_libvirtd.py on one connection each, pipelined.  Both must answer
every call (a REPLY, OK or ERROR, for each serial) and keep the connection;
ours must log nothing unhandled and stay within a memory bound.
"""

from __future__ import annotations

import collections
import sys

from conftest import REPO_ROOT
from hostile import bodies, wire
from hostile.fixtures import fake, procs  # noqa: F401  (fixtures)
from hostile.memory import rss_kib
from hostile.rawpeer import RawPeer
from hostile.servers import FakeDaemon
from peers.daemons import Daemon
from peers.fixtures import libvirtd  # noqa: F401  (fixture)

COUNT = 1000
BATCH = 25
#: Growth of our server's resident memory allowed over the whole run.
RSS_BOUND_KIB = 32 * 1024
#: Procedures left out: closing the libvirt connection would only make later calls fail alike.
SKIP = {"REMOTE_PROC_CONNECT_CLOSE"}


def run_bodies(path: str, procs: dict[str, int], calls: list[tuple[int, bytes]]) -> dict[int, wire.Frame]:
    """Send every call (serials 1000...), pipelined in batches; the reply for each serial."""
    answers: dict[int, wire.Frame] = {}
    with RawPeer(path) as peer:
        assert peer.call(procs["REMOTE_PROC_CONNECT_OPEN"], wire.xdr_opt_string(b"test:///default") + wire.xdr_uint(0)).status == wire.OK
        for start in range(0, len(calls), BATCH):
            serials = list(range(1000 + start, 1000 + min(start + BATCH, len(calls))))
            peer.send(b"".join(wire.frame(proc, payload, serial=s) for s, (proc, payload) in zip(serials, calls[start:])))
            wanted = set(serials)
            obs = peer.read_until(lambda frames: wanted <= {f.serial for f in frames if f.type == wire.REPLY})
            got = {f.serial: f for f in obs.frames if f.type == wire.REPLY}
            missing = sorted(wanted - set(got))
            assert not missing, (
                f"seed {bodies.seed():#x}: calls {[(s - 1000, calls[s - 1000][0]) for s in missing]} got no answer "
                f"(closed={obs.closed})"
            )
            answers.update(got)
    return answers


def summary(answers: dict[int, wire.Frame]) -> collections.Counter[str]:
    out: collections.Counter[str] = collections.Counter()
    for frame in answers.values():
        out["ok" if frame.status == wire.OK else f"error {wire.parse_error(frame.payload).code}"] += 1
    return out


def implemented(procs: dict[str, int]) -> list[int]:
    """Procedures examples/fake_libvirtd.py implements (half the calls go to them)."""
    sys.path.insert(0, str(REPO_ROOT / "examples"))
    from fake_libvirtd import FakeHandler

    return sorted(n for name, n in procs.items() if name.removeprefix("REMOTE_PROC_").lower() in vars(FakeHandler)
                  and name not in SKIP)


def test_random_bodies_are_all_answered(libvirtd: Daemon, fake: FakeDaemon, procs: dict[str, int]) -> None:
    numbers = sorted(n for name, n in procs.items() if name not in SKIP)
    favoured = implemented(procs)
    assert len(favoured) > 20
    calls = list(bodies.calls(numbers, COUNT, bodies.seed(), favoured))
    theirs = run_bodies(libvirtd.socket_path, procs, calls)
    before = rss_kib(fake.pid)
    ours = run_bodies(fake.socket_path, procs, calls)
    grown = rss_kib(fake.pid) - before
    assert len(theirs) == len(ours) == COUNT
    fake.assert_clean()
    assert grown < RSS_BOUND_KIB, f"our server grew by {grown} KiB over {COUNT} random calls"
    print(f"\nrandom bodies (seed {bodies.seed():#x}): libvirtd {dict(summary(theirs))}; ours {dict(summary(ours))}; "
          f"our RSS grew {grown} KiB")
