"""Reference-count check of the compiled engine under a debug CPython.

    python3 tests/engine_refcount.py [--python python3.11d] [--rounds N] [PROTOCOL ...]

1. builds the engine for the debug interpreter into a temporary directory
   (``python3.11d -m xdrgen._build_engine --out DIR``: its own headers and ABI
   suffix, never beside the source);
2. generates the modules of demo.x, libvirt's remote_protocol.x,
   guestfs_protocol.x, every file of Debian's corpus (tests/corpus.py) and
   EDGES_X below with this interpreter, and draws valid encodings of every type
   (tests/xdr_values.py, derandomized);
3. runs tests/engine_refcount_driver.py with the debug interpreter, which puts
   every type through valid, damaged and invalid inputs, runs the special cases
   of tests/engine_refcount_special.py (nesting, XdrEngineMismatch, declined
   inputs, repeated installs), and reads
   ``sys.gettotalrefcount()`` and ``sys.getallocatedblocks()`` around N and 2N
   rounds;
4. prints the figures, and exits 1 when a type leaks.

Needs Debian's python3.11-dbg (tests/test_engine_refcount.py runs this in CI).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from corpus import CORPUS

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

DRIVER = TESTS / "engine_refcount_driver.py"
#: Debug interpreters tried in turn (XDRGEN_DEBUG_PYTHON first when set).
DEBUG_PYTHONS = ("python3.11d", "python3.11-dbg", "python3d", "python3-dbg")
#: What is checked: every type of these (nis_callback.x imports nis.x's types), and
#: the special cases of tests/engine_refcount_special.py on EDGES.
PROTOCOLS = (
    "demo",
    "libvirt",
    "guestfs",
    *(entry.name for entry in CORPUS),
    "edges",
)
#: The protocol of the special cases: written here, not a file of the repository.
EDGES = "edges"
#: What the special cases need: a recursive type (nesting), floats, strings and
#: opaques (declined inputs), arrays of elements of no bytes.
EDGES_X = """
struct tree { tree *left; int value; };
struct reading { float level; double exact; string label<>; opaque raw<>; unsigned hyper count; };
struct e { int m4; };
typedef e none[0];
typedef opaque nothing[0];
typedef nothing many<>;
struct holder { none items<>; many blobs; int tail; };
"""
ROUNDS = 2
WARMUP = 1
#: Valid encodings drawn per type.
EXAMPLES = 2


def find_debug_python() -> str | None:
    """A debug build of CPython (one with ``sys.gettotalrefcount``), or None."""
    chosen = os.environ.get("XDRGEN_DEBUG_PYTHON")
    for name in (chosen,) if chosen else DEBUG_PYTHONS:
        path = shutil.which(name)
        if path is None:
            continue
        probe = subprocess.run(
            [path, "-c", "import sys; sys.gettotalrefcount; assert sys.version_info >= (3, 11)"],
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return path
    return None


def build_debug_engine(python: str, directory: Path) -> Path:
    """The engine compiled for ``python`` (its headers, flags and suffix) in ``directory``."""
    subprocess.run(
        [python, "-m", "xdrgen._build_engine", "--quiet", "--out", str(directory)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    (built,) = directory.glob("_engine*.so")
    return built


def draw(strategy: Any, count: int) -> list[bytes]:
    """``count`` values of a Hypothesis strategy, the same ones every run."""
    from hypothesis import HealthCheck, Phase, given, settings

    found: list[bytes] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(data: bytes) -> None:
        found.append(data)

    collect()
    return list(dict.fromkeys(found))


def prepare(protocol: str, directory: Path, examples: int) -> dict[str, Any]:
    """Generate ``protocol``'s module in ``directory``; where the driver finds it,
    and valid encodings of each of its types."""
    from reference.harness import generate_protocol, protocol_source
    from xdr_values import Encodings

    if protocol == EDGES:
        x_file = directory / "refcount_edges.x"
        x_file.write_text(EDGES_X)
        model, module = generate_protocol(x_file, directory)
    else:
        source = protocol_source(protocol)
        model, module = generate_protocol(
            source.x_file, directory, constants_from=source.constants_from, imports=source.imports
        )
    encodings = Encodings(model)
    types = {
        name: [data.hex() for data in draw(encodings.of(name), examples)]
        for name in model.types
        if name in module.XDR_TYPES
    }
    # Compiled here once: the debug interpreter is several times slower at it, and
    # PYTHONDONTWRITEBYTECODE may be set.
    compileall.compile_dir(directory, quiet=1)
    # A module inside a package (--import) is found from the package's parent.
    depth = module.__name__.count(".") + 1
    path = Path(module.__file__ or "").parents[depth - 1]
    return {"protocol": protocol, "module": module.__name__, "path": str(path), "types": types}


@dataclass
class Report:
    """What the driver measured."""

    data: dict[str, Any]

    @property
    def results(self) -> list[dict[str, Any]]:
        """Per-type results, then the special cases' (protocol "special")."""
        return [*self.data["results"], *self.data["special"]]

    def leaks(self, counter: str = "refs") -> list[dict[str, Any]]:
        """Types whose ``counter`` grows with the rounds (the driver's verdict)."""
        return [r for r in self.results if r["leak"][counter]]

    def unexpected(self) -> list[str]:
        return [f"{r['protocol']}:{r['type']}: {u}" for r in self.results for u in r["unexpected"]]

    def summary(self) -> str:
        rounds = self.data["rounds"]
        lines = [
            f"debug python {self.data['python'].split()[0]}, engine {self.data['engine']}",
            "seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in self.data.get("seconds", {}).items()),
            f"rounds per type: warm-up {self.data['warmup']}, then windows of "
            f"{rounds} and {2 * rounds} (counter offset {self.data['offset']})",
            f"control (keeps what it decodes): refs {self.data['control']['refs']}, "
            f"blocks {self.data['control']['blocks']}",
            "protocol           types  atomic  calls/round  refused inputs  refs N/2N (sum)  "
            "blocks N/2N (sum)  types with refs!=0  leaking",
        ]
        per_type = self.data["results"]
        for protocol in dict.fromkeys(r["protocol"] for r in per_type):
            rows = [r for r in per_type if r["protocol"] == protocol]
            refs = [sum(r["refs"][i] for r in rows) for i in (0, 1)]
            blocks = [sum(r["blocks"][i] for r in rows) for i in (0, 1)]
            lines.append(
                f"{protocol:18} {len(rows):5}  {sum(1 for r in rows if r['atomic']):6}  "
                f"{sum(r['operations'] for r in rows):11}  "
                f"{sum(r['failing'] for r in rows):14}  {str(refs):15}  {str(blocks):17}  "
                f"{sum(1 for r in rows if any(r['refs'])):18}  "
                f"{sum(1 for r in rows if r['leak']['refs'])}"
            )
        lines.append("special case                    calls/round  refused  refs N/2N  blocks N/2N")
        for r in self.data["special"]:
            lines.append(
                f"{r['type']:31} {r['operations']:11}  {r['failing']:7}  {str(r['refs']):9}  "
                f"{r['blocks']}" + "".join(f"  LEAK ({c})" for c, bad in r["leak"].items() if bad)
            )
        for r in per_type:
            if not any(r["refs"]) and not any(r["blocks"]):
                continue
            confirm = r.get("confirm")
            lines.append(
                f"  {r['protocol']}:{r['type']}: refs {r['refs']} blocks {r['blocks']}"
                + (f" confirm {confirm}" if confirm else "")
                + "".join(f"  LEAK ({c})" for c, leaked in r["leak"].items() if leaked)
            )
        if self.data["not_engine"]:
            lines.append(f"NOT ON THE ENGINE: {self.data['not_engine']}")
        lines += [f"UNEXPECTED EXCEPTION {u}" for u in self.unexpected()]
        return "\n".join(lines)


def check(
    python: str,
    workdir: Path,
    protocols: Sequence[str] = PROTOCOLS,
    *,
    rounds: int = ROUNDS,
    examples: int = EXAMPLES,
) -> Report:
    """Build, generate, run the driver under ``python``; what it measured."""
    started = time.monotonic()
    engine = build_debug_engine(python, workdir / "engine")
    modules = []
    for protocol in protocols:
        outdir = workdir / protocol.replace("/", "-").replace(".", "-")
        outdir.mkdir()
        modules.append(prepare(protocol, outdir, examples))
    config = workdir / "cases.json"
    config.write_text(
        json.dumps({"engine": str(engine), "rounds": rounds, "warmup": WARMUP, "modules": modules})
    )
    types = sum(len(entry["types"]) for entry in modules)
    prepared = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k != "XDRGEN_PURE"}
    finished = subprocess.run(
        [python, str(DRIVER), str(config)],
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise AssertionError(
            f"the driver failed ({finished.returncode}):\n{finished.stderr[-4000:]}"
        )
    data = json.loads(finished.stdout)
    data["seconds"] = {"prepare": prepared - started, "driver": time.monotonic() - prepared}
    data["built"], data["types"] = str(engine), types
    return Report(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "protocols",
        nargs="*",
        default=list(PROTOCOLS),
        help="demo, libvirt, guestfs or a corpus file's name (tests/corpus.py); default: "
        + " ".join(PROTOCOLS),
    )
    parser.add_argument("--python", help="a debug CPython (default: python3.11d and others)")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--examples", type=int, default=EXAMPLES)
    parser.add_argument("--json", type=Path, help="also write the driver's figures here")
    parser.add_argument(
        "--keep", type=Path, help="work in this (new) directory and keep it, not a temporary one"
    )
    args = parser.parse_args(argv)
    python = args.python or find_debug_python()
    if python is None:
        print("no debug CPython found (Debian: apt-get install python3.11-dbg)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="xdrgen-refcount-") as tmp:
        workdir = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True)
            workdir = args.keep
        try:
            report = check(
                python, workdir, args.protocols, rounds=args.rounds, examples=args.examples
            )
        except KeyError as unknown:
            print(f"unknown protocol {unknown}", file=sys.stderr)
            return 2
        except (pytest.skip.Exception, pytest.fail.Exception) as missing:
            print(f"cannot check: {missing}", file=sys.stderr)  # a .x file is not installed
            return 2
    if args.json:
        args.json.write_text(json.dumps(report.data, indent=1))
    print(report.summary())
    failed = report.leaks() or report.data["not_engine"] or report.unexpected()
    return 1 if failed or not report.data["control"]["leak"]["refs"] else 0


if __name__ == "__main__":
    sys.exit(main())
