"""Hostile-peer tests: raw bytes against our servers and clients, compared with the real peers.

Helpers (no fixtures are shared through a conftest, so the suites of several
authors stay independent):

- ``wire``: libvirt frames built and parsed by hand (an oracle independent of
  xdrgen.runtime), ``remote_error`` decoded to raw bytes;
- ``rawpeer``: a raw socket client that sends bytes and classifies what came
  back (reply, nothing, close);
- ``memory``: resident memory of a process, tracemalloc snapshots;
- ``bodies``: seeded random payloads;
- ``servers``: our example server (examples/fake_libvirtd.py) as a subprocess
  whose stderr is checked for unhandled exceptions.
"""
