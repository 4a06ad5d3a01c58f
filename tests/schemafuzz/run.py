"""Long schema-fuzzing runs: ``python3 tests/schemafuzz/run.py --schemas 5000 --seed 1``.

Runs schemas ``seed .. seed+schemas-1`` in batches, prints a line per batch and,
for each failure, the seed, the stage, the type and bytes, the ``.x`` and (with
``--shrink``) a shrunk ``.x``.  Exit status 1 when anything failed.  See
docs/testing.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make tests/ importable (pytest does this via its pythonpath).
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemafuzz.coverage import Coverage  # noqa: E402
from schemafuzz.generate import Options, generate_schema  # noqa: E402
from schemafuzz.runner import Limits, Totals, explain, run_batch, schemas_for  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="first schema seed")
    parser.add_argument("--schemas", type=int, default=150, help="how many schemas")
    parser.add_argument("--batch", type=int, default=150, help="schemas per .x file")
    parser.add_argument(
        "--values", type=int, default=40, help="values of each kind per schema"
    )
    parser.add_argument(
        "--mypy", action="store_true", help="run mypy --strict on every generated module"
    )
    parser.add_argument(
        "--no-zero-length", action="store_true", help="never draw <0> and [0] bounds"
    )
    parser.add_argument(
        "--shrink",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="shrink each failing schema for up to SECONDS",
    )
    parser.add_argument(
        "--show", action="store_true", help="print the .x of the first schema and stop"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = Options(zero_length=not args.no_zero_length)
    limits = Limits(values=args.values, mypy=args.mypy)
    if args.show:
        print(generate_schema(args.seed, options).render())
        return 0
    totals = Totals()
    coverage = Coverage()
    started = time.monotonic()
    seeds = list(range(args.seed, args.seed + args.schemas))
    for first in range(0, len(seeds), args.batch):
        batch = seeds[first : first + args.batch]
        for schema in schemas_for(batch, options):
            coverage.add(schema)
        result = run_batch(batch, options, limits)
        totals.add(result)
        print(
            f"seeds {batch[0]}..{batch[-1]}: {result.summary()}",
            flush=True,
        )
        for failure in result.failures:
            print("=" * 78)
            print(explain(failure, batch, options, limits, args.shrink), flush=True)
    elapsed = time.monotonic() - started
    print(f"total: {totals.summary()}; {elapsed:.0f}s")
    missing = coverage.missing()
    print(f"constructs: {len(coverage.seen)} seen" + (f", never drawn: {missing}" if missing else ""))
    return 1 if totals.failures else 0


if __name__ == "__main__":
    sys.exit(main())
