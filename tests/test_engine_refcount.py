"""The compiled engine leaks no references, checked on a debug build of CPython.

tests/engine_refcount.py builds the engine for the debug interpreter (Debian's
python3.11-dbg) in a temporary directory and runs every type of demo.x,
libvirt's and guestfs's protocols and three Debian corpus files through valid,
damaged and invalid inputs there, reading ``sys.gettotalrefcount()`` and
``sys.getallocatedblocks()`` around N and 2N rounds (docs/compiled-engine.md,
Safety).  Without a debug interpreter the test skips; in CI
(``XDRGEN_REQUIRE_PEERS=1``) that is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine_refcount import PROTOCOLS, ROUNDS, check, find_debug_python


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
    assert len(report.results) == data["types"]
    assert {r["protocol"] for r in report.results} == set(PROTOCOLS)
    # Error paths were taken: damaged bytes and invalid values the engine refused.
    assert all(sum(r["failing"] for r in report.results if r["protocol"] == p) for p in PROTOCOLS)
    # The check sees a leak of an object per round (the control keeps what it decodes).
    first, second = data["control"]["refs"]
    assert first >= ROUNDS and second >= 2 * ROUNDS
    assert data["control"]["leak"] == {"refs": True, "blocks": True}
    assert report.unexpected() == []
    assert report.leaks("refs") == [], report.summary()
    assert report.leaks("blocks") == [], report.summary()
