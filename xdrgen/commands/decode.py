"""``xdrgen decode``: decode XDR bytes as one type of a .x file and print the value."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from xdrgen.commands.common import add_frontend_arguments, frontend_options_from
from xdrgen.diagnostics import error

#: Malformed bytes, like malformed .x files, exit with the usage status.
EXIT_BAD_INPUT = 2


def allow_intermixed(parser: argparse.ArgumentParser) -> None:
    """Let options sit between positionals (``TYPE --hex FILE``).

    The subcommand parser is driven through ``parse_known_args`` by the top-level
    parser; route that call to ``parse_known_intermixed_args``, which itself calls
    the ordinary method (so the override steps aside while it runs).
    """

    def parse_known_args(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        del parser.parse_known_args  # the class's method, for the intermixed parser's own calls
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            parser.parse_known_args = parse_known_args  # type: ignore[method-assign,assignment]

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign,assignment]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "decode",
        help="decode XDR bytes as a type of a .x file",
        description="Decode XDR bytes (binary, or hex with --hex) as TYPE and print the value as a tree.",
    )
    parser.add_argument("--x", dest="x_file", type=Path, required=True, metavar="FILE.x", help="the .x file")
    parser.add_argument("type", metavar="TYPE", help="type name as written in the .x file")
    parser.add_argument("input", nargs="?", default="-", metavar="FILE", help="input bytes (default: stdin)")
    parser.add_argument(
        "--hex", action="store_true", help="input is hex text (whitespace and # comments allowed)"
    )
    parser.add_argument("--offset", type=int, default=0, metavar="N", help="start decoding at byte N")
    parser.add_argument(
        "--allow-trailing", action="store_true", help="accept bytes after the value (reports how many)"
    )
    parser.add_argument("--repr", action="store_true", help="print Python's repr() instead of a tree")
    add_frontend_arguments(parser)
    allow_intermixed(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from xdrgen.build.loader import load_generated
    from xdrgen.wire.capture import read_input
    from xdrgen.runtime.errors import XdrError
    from xdrgen.wire.render import render_value

    data = read_input(args.input, hex_text=args.hex)
    module = load_generated(args.x_file, frontend_options_from(args))
    types = module.XDR_TYPES
    codec = types.get(args.type)
    if codec is None:
        close = difflib.get_close_matches(args.type, list(types), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise error(f"{args.x_file}: no type {args.type!r}{hint}")
    if not 0 <= args.offset <= len(data):
        raise error(f"--offset {args.offset} is outside the {len(data)} input bytes")
    try:
        value, end = codec.decode_from(memoryview(data), args.offset)
    except XdrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if end != len(data) and not args.allow_trailing:
        print(
            f"error: {args.type}: {len(data) - end} bytes left over after the value at byte offset {end}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if args.repr:
        print(repr(value))
    else:
        print("\n".join(render_value(value)))
    if end != len(data):
        print(f"({len(data) - end} trailing bytes from byte offset {end})", file=sys.stderr)
    return 0
