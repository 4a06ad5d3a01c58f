"""Generation time, import time and W1-W4 marshalling timings of xdrgen's own code.

Prints a table; no peers here (bench/ has the comparative benchmark).  Needs
../shared/protocols and libvirt.h.  Usage: python bench/bench_generate.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REMOTE_X = REPO.parent / "shared" / "protocols" / "libvirt" / "remote_protocol.x"
LIBVIRT_H = Path("/usr/include/libvirt/libvirt.h")


def run_cli(outdir: Path, cache_dir: Path, *extra: str) -> float:
    cmd = [
        sys.executable,
        "-m",
        "xdrgen.cli",
        "generate",
        str(REMOTE_X),
        "-o",
        str(outdir),
        "--constants-from",
        str(LIBVIRT_H),
        "-q",
        *extra,
    ]
    env = dict(os.environ, XDRGEN_CACHE_DIR=str(cache_dir))
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - started


def import_time(outdir: Path) -> float:
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import xdrgen.runtime.codec, xdrgen.runtime.checks, "
        "xdrgen.runtime.procedures, enum, struct, typing; t = time.perf_counter(); import remote_protocol; "
        "print(time.perf_counter() - t)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-c", code, str(outdir)],
        check=True,
        capture_output=True,
        env=env,
    )  # .pyc
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code, str(outdir)],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
        )
        for _ in range(5)
    ]
    return min(runs)


def per_call(fn: object, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number  # type: ignore[arg-type]


def workloads(outdir: Path) -> dict[str, float]:
    sys.path.insert(0, str(outdir))
    import remote_protocol as r  # type: ignore[import-not-found]

    out: dict[str, float] = {}
    w1 = r.XDR_TYPES["remote_domain_get_info_ret"]
    v1 = r.remote_domain_get_info_ret(
        state=1, maxMem=8 << 30, memory=4 << 30, nrVirtCpu=4, cpuTime=123456789
    )
    out["W1 get_info_ret enc+dec"] = per_call(lambda: w1.decode(w1.encode(v1)), 100_000)

    w2 = r.XDR_TYPES["remote_connect_list_all_domains_ret"]
    doms = [
        r.remote_nonnull_domain(
            name=f"dom-{i:0{8 + i % 5}d}"[: 8 + i % 5], uuid=os.urandom(16), id=i
        )
        for i in range(1000)
    ]
    v2 = r.remote_connect_list_all_domains_ret(domains=doms, ret=1000)
    out["W2 1000 domains enc+dec"] = per_call(lambda: w2.decode(w2.encode(v2)), 50)

    # W3: 200 typed params, all seven arms (the list codec is the element codec in a loop
    # here; bounds do not change the wire format).
    tp = r.XDR_TYPES["remote_typed_param"]
    arms = [
        (1, -5),
        (2, 7),
        (3, -(2**40)),
        (4, 2**50),
        (5, 0.5),
        (6, 1),
        (7, "value-string"),
    ]
    params = [
        r.remote_typed_param(
            field=f"param{i}",
            value=r.remote_typed_param_value(type=arms[i % 7][0], value=arms[i % 7][1]),
        )
        for i in range(200)
    ]

    def w3() -> None:
        buf = bytearray()
        for p in params:
            tp.encode_into(buf, p)
        off = 0
        data = bytes(buf)
        for _ in range(200):
            _, off = tp.decode_from(data, off)

    out["W3 200 typed params enc+dec"] = per_call(w3, 200)

    w4 = r.XDR_TYPES["remote_domain_block_peek_ret"]
    v4 = r.remote_domain_block_peek_ret(buffer=os.urandom(256 * 1024))
    out["W4 256 KiB block peek enc+dec"] = per_call(
        lambda: w4.decode(w4.encode(v4)), 500
    )
    raw = v4.buffer
    out["W4 reference: two bytes copies"] = per_call(lambda: bytes(bytearray(raw)), 500)
    return out


def main() -> None:
    if not REMOTE_X.is_file() or not LIBVIRT_H.is_file():
        sys.exit(f"needs {REMOTE_X} and {LIBVIRT_H}")
    with tempfile.TemporaryDirectory() as tmp:
        outdir, cache = Path(tmp) / "out", Path(tmp) / "cache"
        cold = run_cli(outdir, cache, "--no-cache")
        run_cli(outdir, cache)  # fills the manifest
        warm = min(run_cli(outdir, cache) for _ in range(3))
        imported = import_time(outdir)
        results = workloads(outdir)
    rows = [
        ("generate remote_protocol.x, cold (s)", cold, "<= 1.5"),
        ("generate remote_protocol.x, unchanged (s)", warm, "<= 0.2"),
        ("import remote_protocol, warm .pyc (ms)", imported * 1e3, "<= 100"),
    ]
    rows += [(f"{name} (us)", value * 1e6, "") for name, value in results.items()]
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:10.3f}  {target}")


if __name__ == "__main__":
    main()
