"""ONC RPC calls per second: the generated clients and server against rpcgen's C, in the same run.

    python bench/bench_oncrpc.py [--quick] [--rounds R] [--calls N]

Builds rpcgen's C client and server for protocols/demo.x (tests/peers/
rpcgen_peers.py; needs rpcgen, gcc, libtirpc) and generates the Python module
for demo.x.  Every measurement makes N sequential calls (or N calls 32 at a
time) of version 2's NULL and ADD (two hypers in, one out: demo.x's smallest
procedure with arguments and a result), over TCP on the loopback:

- clients against the C server: rpcgen's C client, the blocking Python
  client, the asyncio Python client with 32 calls in flight;
- servers driven by rpcgen's C client: the C server, the Python server (in a
  process of its own, as a real server runs).

UDP is measured the same way, for information.  Each round measures the peers
of one transport and procedure back to back, in alternating order; the ratio
of a round compares runs made under the same load, and the table gives the
median of the rounds' ratios (and their range), for the targets:

- blocking Python client >= 0.5x the C client (sequential);
- asyncio Python client, 32 in flight >= 1.0x the C client's sequential rate;
- Python server >= 0.5x the C server (both driven by the C client).

Figures from a busy machine vary by tens of percent; read the ratios of one
run, and re-measure on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType


HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "tests")]

from peers.rpcgen_peers import CServer, DemoPeers, build_demo_peers, run_demo_client, start_demo_server  # noqa: E402
from reference.harness import generate_module  # noqa: E402

PROCS = ("null", "add")
IN_FLIGHT = 32


def demo_module() -> ModuleType:
    return generate_module(REPO / "protocols" / "demo.x", Path(tempfile.mkdtemp(prefix="bench-oncrpc-")))


# -- the measured loops ----------------------------------------------------------


def c_client(peers: DemoPeers, transport: str, port: int, proc: str, calls: int) -> float:
    result = run_demo_client(peers, "bench", "127.0.0.1", transport, str(port), proc, str(calls), timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"demo_client bench failed: {result.stdout}{result.stderr}")
    fields = result.stdout.split()
    return int(fields[1]) / (int(fields[3]) / 1e9)


def sync_client(demo: ModuleType, transport: str, port: int, proc: str, calls: int) -> float:
    connect = demo.DemoRpcProgram2Client.connect_tcp if transport == "tcp" else demo.DemoRpcProgram2Client.connect_udp
    with connect("127.0.0.1", port) as c:
        c.demo_null()  # connection set-up is not what is measured
        if proc == "null":
            call = c.demo_null
            start = time.perf_counter()
            for _ in range(calls):
                call()
        else:
            add = c.demo_add
            start = time.perf_counter()
            for i in range(calls):
                add(i, 1)
        return calls / (time.perf_counter() - start)


def async_client(demo: ModuleType, transport: str, port: int, proc: str, calls: int) -> float:
    async def main() -> float:
        cls = demo.DemoRpcProgram2AsyncClient
        c = await (cls.connect_tcp if transport == "tcp" else cls.connect_udp)("127.0.0.1", port)
        async with c:
            await c.demo_null()

            async def worker(count: int) -> None:
                if proc == "null":
                    for _ in range(count):
                        await c.demo_null()
                else:
                    for i in range(count):
                        await c.demo_add(i, 1)

            share = calls // IN_FLIGHT
            start = time.perf_counter()
            await asyncio.gather(*(worker(share) for _ in range(IN_FLIGHT)))
            return share * IN_FLIGHT / (time.perf_counter() - start)

    return asyncio.run(main())


# -- the Python server, in a process of its own ------------------------------------


SERVER_SCRIPT = """
import asyncio, sys
sys.path[:0] = [{tests!r}]
from pathlib import Path
from peers.pyserver import c_like_handlers
from reference.harness import generate_module
demo = generate_module(Path({demo_x!r}), Path({outdir!r}))
async def main():
    v1, v2 = c_like_handlers(demo)
    server = await demo.DemoRpcProgram2Server(v2).serve(also=[demo.DemoRpcProgram1Server(v1)])
    print(server.tcp_port, server.udp_port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.close()
asyncio.run(main())
"""


class PythonServer:
    def __init__(self) -> None:
        script = SERVER_SCRIPT.format(
            tests=str(REPO / "tests"), demo_x=str(REPO / "protocols" / "demo.x"), outdir=tempfile.mkdtemp()
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if len(line) != 2:
            self.stop()
            raise RuntimeError("the Python server did not start")
        self.tcp_port, self.udp_port = int(line[0]), int(line[1])

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- rounds and the table --------------------------------------------------------


def run(rounds: int, calls: int) -> None:
    peers = build_demo_peers()
    demo = demo_module()
    c_server: CServer = start_demo_server(peers)
    py_server = PythonServer()
    try:
        cases: dict[tuple[str, str, str], Callable[[], float]] = {}
        for transport in ("tcp", "udp"):
            cport = c_server.tcp_port if transport == "tcp" else c_server.udp_port
            pport = py_server.tcp_port if transport == "tcp" else py_server.udp_port
            for proc in PROCS:
                t, p, cp, pp = transport, proc, cport, pport
                cases[(t, p, "C client -> C server")] = partial(c_client, peers, t, cp, p, calls)
                cases[(t, p, "Python sync client -> C server")] = partial(sync_client, demo, t, cp, p, calls)
                cases[(t, p, f"Python asyncio client, {IN_FLIGHT} in flight -> C server")] = partial(
                    async_client, demo, t, cp, p, calls
                )
                cases[(t, p, "C client -> Python server")] = partial(c_client, peers, t, pp, p, calls)
        for fn in cases.values():  # warm-up: caches, connections, the server's first calls
            fn()
        results: dict[tuple[str, str, str], list[float]] = {key: [] for key in cases}
        # Each round measures the peers of one transport and procedure back to back, in
        # alternating order, so the ratios of a round compare runs made under the same load.
        groups = [[key for key in cases if key[:2] == (t, p)] for t in ("tcp", "udp") for p in PROCS]
        for r in range(rounds):
            for group in groups:
                for key in group if r % 2 == 0 else list(reversed(group)):
                    results[key].append(cases[key]())
    finally:
        py_server.stop()
        c_server.stop()
    report(results, rounds, calls)


TARGETS = [
    ("sync client / C client", "Python sync client -> C server", "C client -> C server", 0.5),
    (f"asyncio {IN_FLIGHT} in flight / C client sequential",
     f"Python asyncio client, {IN_FLIGHT} in flight -> C server", "C client -> C server", 1.0),
    ("Python server / C server", "C client -> Python server", "C client -> C server", 0.5),
]


def report(results: dict[tuple[str, str, str], list[float]], rounds: int, calls: int) -> None:
    med = {key: statistics.median(values) for key, values in results.items()}
    print(f"ONC RPC calls/s, {calls} calls per measurement, {rounds} rounds: median (min-max)")
    print()
    print("| transport | procedure | peer | calls/s | range |")
    print("|---|---|---|---:|---|")
    for key, values in results.items():
        transport, proc, who = key
        print(f"| {transport} | {proc.upper()} | {who} | {med[key]:,.0f} | {min(values):,.0f}-{max(values):,.0f} |")
    print()
    print("Ratios: per round (both sides measured back to back), then the median and range")
    print("over the rounds:")
    print()
    print("| target | transport | procedure | ratio (median) | range | target | met |")
    print("|---|---|---|---:|---|---:|---|")
    for transport in ("tcp", "udp"):
        for proc in PROCS:
            for name, ours, theirs, target in TARGETS:
                ratios = [a / b for a, b in zip(results[(transport, proc, ours)], results[(transport, proc, theirs)])]
                ratio = statistics.median(ratios)
                verdict = "yes" if ratio >= target else "NO"
                note = "" if transport == "tcp" else " (information)"
                print(f"| {name}{note} | {transport} | {proc.upper()} | {ratio:.2f}x | "
                      f"{min(ratios):.2f}-{max(ratios):.2f} | {target:.1f}x | {verdict} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 9)
    calls = args.calls or (2000 if args.quick else 5000)
    run(rounds, calls)


if __name__ == "__main__":
    main()
