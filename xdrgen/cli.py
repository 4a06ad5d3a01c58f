"""``xdrgen`` command line: dispatches to the modules in ``xdrgen.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from xdrgen import __version__
from xdrgen.commands import COMMANDS
from xdrgen.diagnostics import XdrgenError

#: Exit status for errors in the user's input (bad .x, bad bytes, bad options).
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xdrgen",
        description="Generate typed, fast Python from XDR / ONC-RPC interface files.",
    )
    parser.add_argument("--version", action="version", version=f"xdrgen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"xdrgen.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"xdrgen.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except XdrgenError as exc:
        print(exc.render(), file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        # Unreadable inputs, unwritable outputs: the user's environment, not a bug.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
