"""Command-line entry point (filled in as the front end lands)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from xdrgen import __version__

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--version"]:
        print(f"xdrgen {__version__}")
        return 0
    print("usage: xdrgen {check,generate} ...", file=sys.stderr)
    return 2
