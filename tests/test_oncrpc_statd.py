"""The client generated from Debian's sm_inter.x against a real rpc.statd, found through rpcbind.

statd (NSM, program 100024) answers SM_STAT with its state number (the one
in its state file), accepts SM_MON for ``localhost`` from a lockd-style
callback (statd only takes program 100021, procedure 16 or 24) and writes a
monitor record in sm/, removed again by SM_UNMON and SM_UNMON_ALL.
"""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path
from types import ModuleType

import pytest

from peers.oncrpc_daemons import Statd
from peers.oncrpc_fixtures import statd  # noqa: F401  (fixture)
from reference.harness import generate_module

SM_INTER = Path("/usr/include/rpcsvc/sm_inter.x")
#: The callback statd accepts: lockd's NLM program, procedure 16 (NLM_SM_NOTIFY).
NLM_PROGRAM, NLM_VERSION, NLM_SM_NOTIFY = 100021, 4, 16


@pytest.fixture(scope="module")
def sm(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    if not SM_INTER.is_file():
        message = f"{SM_INTER} not found (Debian package rpcsvc-proto)"
        if os.environ.get("XDRGEN_REQUIRE_SHARED") == "1" or os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return generate_module(SM_INTER, tmp_path_factory.mktemp("sm_inter"))  # read where installed


def state_number(statd: Statd) -> int:
    return int(struct.unpack("=i", (statd.statedir / "state").read_bytes())[0])


def record(statd: Statd) -> Path:
    return statd.statedir / "sm" / "localhost"


def expected_record(priv: bytes) -> str:
    # 127.0.0.1 in the record's host byte order, then the callback and the private cookie.
    return f"0100007f {NLM_PROGRAM:08x} {NLM_VERSION:08x} {NLM_SM_NOTIFY:08x} {priv.hex()} localhost localhost\n"


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_statd_stat_mon_unmon_unmon_all(sm: ModuleType, statd: Statd, transport: str) -> None:
    state = state_number(statd)
    assert state % 2 == 1  # statd runs with an odd state number
    me = sm.my_id(my_name="localhost", my_prog=NLM_PROGRAM, my_vers=NLM_VERSION, my_proc=NLM_SM_NOTIFY)
    watch = sm.mon_id(mon_name="localhost", my_id=me)
    priv = bytes(range(16)) if transport == "tcp" else bytes(range(100, 116))
    with sm.SmProg1Client.create("127.0.0.1", transport) as c:
        assert c.connection.version == 1 and c.connection.program == 100024
        assert c.sm_stat(sm.sm_name(mon_name="localhost")) == sm.sm_stat_res(res_stat=sm.res.stat_succ, state=state)

        assert not record(statd).exists()
        assert c.sm_mon(sm.mon(mon_id=watch, priv=priv)) == sm.sm_stat_res(res_stat=sm.res.stat_succ, state=state)
        assert record(statd).read_text() == expected_record(priv)

        assert c.sm_unmon(watch) == sm.sm_stat(state=state)
        assert not record(statd).exists()

        assert c.sm_mon(sm.mon(mon_id=watch, priv=priv)).res_stat == sm.res.stat_succ
        assert record(statd).exists()
        assert c.sm_unmon_all(me) == sm.sm_stat(state=state)
        assert not record(statd).exists()

        # statd cannot resolve this name: STAT_FAIL, and no record.
        bad = sm.mon(mon_id=sm.mon_id(mon_name="no-such-host.invalid", my_id=me), priv=priv)
        assert c.sm_mon(bad).res_stat == sm.res.stat_fail
        assert list((statd.statedir / "sm").iterdir()) == []


def test_statd_from_the_asyncio_client(sm: ModuleType, statd: Statd) -> None:
    async def main() -> None:
        for transport in ("tcp", "udp"):
            c = await sm.SmProg1AsyncClient.create("127.0.0.1", transport)
            async with c:
                names = [f"host{i}" for i in range(20)]
                results = await asyncio.gather(*(c.sm_stat(sm.sm_name(mon_name=n)) for n in ["localhost", *names]))
                assert {r.state for r in results} == {state_number(statd)}

    asyncio.run(main())
