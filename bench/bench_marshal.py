#!/usr/bin/env python3
"""Marshalling benchmark: xdrgen's generated code against xdrlib by hand and rpcgen's C.

Workloads (libvirt's remote_protocol.x types, one encode + one decode per op):

  W1 remote_domain_get_info_ret
  W2 remote_connect_list_all_domains_ret with 1000 domains
  W3 remote_domain_get_guest_info_ret: 200 remote_typed_param, all seven arms
     (its list bound, 2048, already allows 200: no bench copy of the .x needed)
  W4 remote_domain_block_peek_ret with a 256 KiB buffer

Peers, measured in the same run: hand-written code over xdrlib's Packer/Unpacker
(bench/marshal_peers/xdrlib_peer.py), rpcgen's C (a C loop in the reference helper,
tests/reference/ref_driver.c, so no ctypes or pipe overhead is timed), and for
W4 two plain copies of the buffer.  Prints a markdown table of ns/op and ratios
(no assertions).  A second table times bench/marshal_peers/floor_peer.py: the same objects
and bytes built by the fastest Python we know, with every check left out and
with only the checks issue 3 requires, which shows how close any pure-Python
codec can come to each target.  ``--profile`` adds a cProfile of the generated code per workload.

Each workload's input is one canonical encoding E; every implementation first
decodes E into its own value representation, must re-encode it to E exactly,
then is timed doing encode(value) + decode(E).

    python bench/bench_marshal.py [--repeats 7] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import operator
import pstats
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from marshal_peers.floor_peer import make_checked_floor, make_floor  # noqa: E402
from marshal_peers.xdrlib_peer import make_peer  # noqa: E402
from reference.rpcgen_ref import build_reference  # noqa: E402

REMOTE_X = REPO.parent / "shared" / "protocols" / "libvirt" / "remote_protocol.x"
LIBVIRT_H = Path("/usr/include/libvirt/libvirt.h")

#: Ratio targets from issue 3: (vs xdrlib, vs rpcgen C, vs two copies).
TARGETS: dict[str, tuple[float | None, float | None, float | None]] = {
    "W1": (0.08, 4.5, None),
    "W2": (0.25, 4.5, None),
    "W3": (0.30, 6.0, None),
    "W4": (None, None, 1.1),
}


# --------------------------------------------------------------------------
# Inputs: canonical encodings built directly with struct (independent of all peers).


def _u32(value: int) -> bytes:
    return struct.pack(">I", value)


def _string(data: bytes) -> bytes:
    return _u32(len(data)) + data + bytes(-len(data) % 4)


def w1_input(rng: random.Random) -> bytes:
    return struct.pack(
        ">IQQIQ", 1, 8 * 2**30 // 1024, 4 * 2**30 // 1024, 4, rng.getrandbits(63)
    )


def w2_input(rng: random.Random, count: int = 1000) -> bytes:
    parts = [_u32(count)]
    letters = b"abcdefghijklmnopqrstuvwxyz0123456789-_"
    for number in range(count):
        name = bytes(rng.choice(letters) for _ in range(rng.randint(8, 12)))
        parts.append(_string(name) + rng.randbytes(16) + struct.pack(">i", number + 1))
    parts.append(_u32(count))
    return b"".join(parts)


def w3_input(rng: random.Random, count: int = 200) -> bytes:
    parts = [_u32(count)]
    for number in range(count):
        kind = number % 7 + 1
        parts.append(
            _string(f"guest.param.{number}".encode()) + struct.pack(">i", kind)
        )
        if kind == 1:
            parts.append(struct.pack(">i", rng.randint(-(2**31), 2**31 - 1)))
        elif kind == 2:
            parts.append(struct.pack(">I", rng.getrandbits(32)))
        elif kind == 3:
            parts.append(struct.pack(">q", rng.randint(-(2**63), 2**63 - 1)))
        elif kind == 4:
            parts.append(struct.pack(">Q", rng.getrandbits(64)))
        elif kind == 5:
            parts.append(struct.pack(">d", rng.uniform(-1e9, 1e9)))
        elif kind == 6:
            parts.append(struct.pack(">i", rng.randint(0, 1)))
        else:
            parts.append(_string(f"value-{rng.getrandbits(40):x}".encode()))
    return b"".join(parts)


def w4_input(rng: random.Random) -> bytes:
    return _string(rng.randbytes(256 * 1024))


@dataclass(frozen=True)
class Workload:
    key: str
    type_name: str
    data: bytes


def workloads() -> list[Workload]:
    rng = random.Random(3)
    return [
        Workload("W1", "remote_domain_get_info_ret", w1_input(rng)),
        Workload("W2", "remote_connect_list_all_domains_ret", w2_input(rng)),
        Workload("W3", "remote_domain_get_guest_info_ret", w3_input(rng)),
        Workload("W4", "remote_domain_block_peek_ret", w4_input(rng)),
    ]


# --------------------------------------------------------------------------
# Timing.


@dataclass(frozen=True)
class Timing:
    best_ns: float
    median_ns: float


#: One contender: encode and its value, decode and its input.  The timed loop
#: calls them directly, as user code would, so no harness layer (a lambda, a
#: tuple of results) is counted: the rpcgen C peer is timed by a bare C loop too.
Op = tuple[Callable[[Any], object], object, Callable[[Any], object], object]


def _run(op: Op, loops: int) -> int:
    """ns for ``loops`` rounds of encode(value) + decode(data)."""
    encode, value, decode, data = op
    start = time.perf_counter_ns()
    for _ in range(loops):
        encode(value)
        decode(data)
    return time.perf_counter_ns() - start


def _calibrate(op: Op, budget_s: float) -> int:
    """Loop count that makes one batch of ``op`` take about ``budget_s``."""
    loops = 1
    while True:
        elapsed = _run(op, loops)
        if elapsed >= budget_s * 1e9 / 4 or loops >= 1 << 20:
            return max(1, int(loops * budget_s * 1e9 / max(elapsed, 1)))
        loops *= 2


def time_ops(
    ops: dict[str, Op], repeats: int, budget_s: float = 0.05
) -> dict[str, Timing]:
    """ns per encode+decode of each op: best and median of ``repeats`` batches.

    Batches of the contenders alternate, so that all of them run under the same
    machine and allocator state (glibc's mmap threshold adapts to large frees,
    which otherwise makes the 256 KiB workload depend on what ran before it).
    """
    loops = {name: _calibrate(op, budget_s) for name, op in ops.items()}
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(repeats):
        for name, op in ops.items():
            samples[name].append(_run(op, loops[name]) / loops[name])
    return {
        name: Timing(min(values), statistics.median(values))
        for name, values in samples.items()
    }


def generate_remote(outdir: Path) -> ModuleType:
    """Generate the Python module for remote_protocol.x with the xdrgen CLI and import it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "xdrgen.cli",
            "generate",
            str(REMOTE_X),
            "-o",
            str(outdir),
            "--module",
            "bench_remote_protocol",
            "--constants-from",
            str(LIBVIRT_H),
            "-q",
        ],
        check=True,
    )
    path = outdir / "bench_remote_protocol.py"
    spec = importlib.util.spec_from_file_location("bench_remote_protocol", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _ratio(ours: float, theirs: float | None) -> str:
    if theirs is None:
        return ""
    return "n/a" if ours != ours else f"{ours / theirs:.3f}x"  # NaN: not measured


def _target(value: float | None) -> str:
    return "" if value is None else f"<= {value}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the generated code"
    )
    parser.add_argument(
        "--peers-only", action="store_true", help="measure xdrlib and rpcgen C only"
    )
    args = parser.parse_args(argv)

    if not REMOTE_X.is_file():
        print(f"{REMOTE_X} not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="xdrgen-bench-") as tmp:
        codecs: Any = None
        floors: dict[str, dict[str, Any]] = {}
        strings_as_text = True
        if not args.peers_only:
            module = generate_remote(Path(tmp))
            codecs = module.XDR_TYPES
            floors = {
                "floor": make_floor(module),
                "checked": make_checked_floor(module),
            }
            sample = codecs["remote_nonnull_string"].decode(_string(b"x"))
            strings_as_text = isinstance(sample, str)
        peer = make_peer(strings_as_text=strings_as_text)
        reference = build_reference(
            REMOTE_X, [w.type_name for w in workloads()], defines={}
        )
        rows = []
        floor_rows = []
        profiles: list[str] = []
        with reference:
            for work in workloads():
                data = work.data
                contenders: dict[str, Op] = {}
                if codecs is not None:
                    codec = codecs[work.type_name]
                    ours_value = codec.decode(data)
                    if codec.encode(ours_value) != data:
                        raise SystemExit(
                            f"{work.key}: generated code does not re-encode its input"
                        )
                    contenders["xdrgen"] = (
                        codec.encode,
                        ours_value,
                        codec.decode,
                        data,
                    )
                    if args.profile:
                        profiles.append(profile(work, codec, ours_value))
                for kind, floor in floors.items():
                    if work.type_name not in floor:
                        continue
                    floor_encode, floor_decode = floor[work.type_name]
                    floor_value = floor_decode(data)
                    if floor_value != ours_value or floor_encode(floor_value) != data:
                        raise SystemExit(f"{work.key}: {kind} floor peer disagrees")
                    contenders[kind] = (floor_encode, floor_value, floor_decode, data)
                peer_codec = peer[work.type_name]
                peer_value = peer_codec.decode(work.data)
                if peer_codec.encode(peer_value) != work.data:
                    raise SystemExit(
                        f"{work.key}: xdrlib peer does not re-encode its input"
                    )
                contenders["xdrlib"] = (
                    peer_codec.encode,
                    peer_value,
                    peer_codec.decode,
                    data,
                )
                if work.key == "W4":
                    # The floor for opaque data: one copy to build the encoding, one to
                    # take the bytes out of it, both alive at once like encode+decode's.
                    payload, header = data[4:], data[:4]
                    contenders["copies"] = (
                        header.__add__,
                        payload,
                        operator.itemgetter(slice(4, None)),
                        data,
                    )
                timings = time_ops(contenders, args.repeats)
                ours = timings.get("xdrgen")
                xdrlib_time = timings["xdrlib"]
                copies = timings.get("copies")
                iterations = max(10, int(2e8 / max(len(data), 64)))
                rpcgen = min(
                    reference.bench(work.type_name, data, iterations).decode_encode_ns
                    for _ in range(args.repeats)
                )
                rows.append((work, ours, xdrlib_time, rpcgen, copies))
                if "floor" in timings and "checked" in timings:
                    floor_rows.append(
                        (
                            work,
                            timings["floor"],
                            timings["checked"],
                            ours,
                            xdrlib_time,
                            rpcgen,
                        )
                    )

    print(
        f"Python {sys.version.split()[0]}; ns per encode+decode (best of {args.repeats}, median)"
    )
    print()
    print(
        "| workload | type | xdrgen ns (median) | xdrlib ns | xdrgen/xdrlib | target "
        "| rpcgen C ns | xdrgen/C | target | 2 copies ns | xdrgen/copies | target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for work, ours, xdrlib_time, rpcgen, copies in rows:
        t_xdrlib, t_c, t_copies = TARGETS[work.key]
        best = float("nan") if ours is None else ours.best_ns
        print(
            f"| {work.key} | `{work.type_name}` "
            f"| {'n/a' if ours is None else f'{ours.best_ns:,.0f} ({ours.median_ns:,.0f})'} "
            f"| {xdrlib_time.best_ns:,.0f} | {_ratio(best, xdrlib_time.best_ns)} "
            f"| {_target(t_xdrlib)} | {rpcgen:,.0f} | {_ratio(best, rpcgen)} "
            f"| {_target(t_c)} | {'' if copies is None else f'{copies.best_ns:,.0f}'} "
            f"| {_ratio(best, None if copies is None else copies.best_ns)} "
            f"| {_target(t_copies)} |"
        )
    if floor_rows:
        print()
        print(
            "Floors (bench/marshal_peers/floor_peer.py): the same objects and bytes with no "
            "checks at all, and with only the checks issue 3 requires (neither is "
            "a usable codec)"
        )
        print()
        print(
            "| workload | no checks ns | /xdrlib | /C | required checks ns (median) "
            "| /xdrlib | target | /C | target | xdrgen/checked floor |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for work, low, checked, ours, xdrlib_time, rpcgen in floor_rows:
            t_xdrlib, t_c, _ = TARGETS[work.key]
            mine = float("nan") if ours is None else ours.best_ns
            print(
                f"| {work.key} | {low.best_ns:,.0f} "
                f"| {_ratio(low.best_ns, xdrlib_time.best_ns)} "
                f"| {_ratio(low.best_ns, rpcgen)} "
                f"| {checked.best_ns:,.0f} ({checked.median_ns:,.0f}) "
                f"| {_ratio(checked.best_ns, xdrlib_time.best_ns)} | {_target(t_xdrlib)} "
                f"| {_ratio(checked.best_ns, rpcgen)} | {_target(t_c)} "
                f"| {_ratio(mine, checked.best_ns)} |"
            )
    for text in profiles:
        print()
        print(text)
    return 0


def profile(work: Workload, codec: Any, value: object, loops: int = 200) -> str:
    """Top functions of the generated code's encode+decode, by internal time."""
    profiler = cProfile.Profile()
    data = work.data
    profiler.enable()
    for _ in range(loops):
        codec.encode(value)
        codec.decode(data)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(12)
    return (
        f"### cProfile {work.key} ({work.type_name}), {loops} encode+decode\n```\n"
        + (out.getvalue().strip() + "\n```")
    )


if __name__ == "__main__":
    sys.exit(main())
