"""The compiled engine leaks no references, checked on a debug build of CPython.

tests/engine_refcount.py builds the engine for the debug interpreter (Debian's
python3.11-dbg) in a temporary directory and runs every type of demo.x,
libvirt's and guestfs's protocols and every Debian corpus file through valid,
damaged and invalid inputs there, and the special cases of
tests/engine_refcount_special.py (nesting, XdrEngineMismatch, declined inputs,
repeated installs), reading ``sys.gettotalrefcount()`` and
``sys.getallocatedblocks()`` around N and 2N rounds (docs/compiled-engine.md,
Safety).  Without a debug interpreter the test skips; in CI
(``XDRGEN_REQUIRE_PEERS=1``) that is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine_refcount import PROTOCOLS, ROUNDS, check, find_debug_python

#: tests/engine_refcount_special.py's cases (the driver names them).
SPECIAL = {
    "nesting 150",
    "nesting 250",
    "nesting 3000",
    "XdrEngineMismatch",
    "float32 NaN",
    "lone surrogates",
    "subclasses and duck types",
    "elements of no bytes",
    "install unrunnable plans",
    *(f"install {protocol}" for protocol in PROTOCOLS),
    "exec edges",
    "exec nfs_prot.x",
    "exec rpcb_prot.x",
}


def test_the_engine_leaks_no_references(tmp_path: Path) -> None:
    python = find_debug_python()
    if python is None:
        message = (
            "no debug CPython (sys.gettotalrefcount) on PATH: Debian's python3.11-dbg "
            "(python3.11d), or XDRGEN_DEBUG_PYTHON"
        )
        if os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
            pytest.fail(message + " (required: XDRGEN_REQUIRE_PEERS=1)")
        pytest.skip(message)
    report = check(python, tmp_path)
    print(report.summary())
    data = report.data
    # The engine built for the debug interpreter ran every type, nothing else.
    assert data["engine"] == data["built"]
    assert data["not_engine"] == []
    assert len(data["results"]) == data["types"]
    assert {r["protocol"] for r in data["results"]} == set(PROTOCOLS)
    assert {r["type"] for r in data["special"]} == SPECIAL
    # Error paths were taken: damaged bytes and invalid values the engine refused.
    assert all(sum(r["failing"] for r in report.results if r["protocol"] == p) for p in PROTOCOLS)
    # Decoded instances of atomic types leave the cyclic GC (decode.c): measured too.
    assert sum(r["atomic"] for r in data["results"] if r["protocol"] == "libvirt") > 100
    # The check sees a leak of an object per round (the control keeps what it decodes).
    first, second = data["control"]["refs"]
    assert first >= ROUNDS and second >= 2 * ROUNDS
    assert data["control"]["leak"] == {"refs": True, "blocks": True}
    assert report.unexpected() == []
    assert report.leaks("refs") == [], report.summary()
    assert report.leaks("blocks") == [], report.summary()
