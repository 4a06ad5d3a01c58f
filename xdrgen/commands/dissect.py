"""``xdrgen dissect``: print each message of a captured libvirt, guestfs or ONC RPC stream."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xdrgen.commands.common import add_frontend_arguments, frontend_options_from
from xdrgen.commands.decode import allow_intermixed

#: Malformed captures, like malformed .x files, exit with the usage status.
EXIT_BAD_INPUT = 2


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "dissect",
        help="print the messages of a captured RPC byte stream",
        description=(
            "Split a captured byte stream (one direction, or both interleaved) into messages and print "
            "each one's header, procedure name and decoded arguments or results."
        ),
    )
    parser.add_argument("--x", dest="x_file", type=Path, required=True, metavar="FILE.x", help="the .x file")
    parser.add_argument(
        "--framing", required=True, choices=("libvirt", "guestfs", "oncrpc"), help="how messages are framed"
    )
    parser.add_argument(
        "input", nargs="?", default="-", metavar="FILE", help="captured bytes (default: stdin)"
    )
    parser.add_argument(
        "--hex", action="store_true", help="input is hex text (whitespace and # comments allowed)"
    )
    add_frontend_arguments(parser)
    allow_intermixed(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from xdrgen.build.loader import load_generated
    from xdrgen.wire.capture import read_input
    from xdrgen.wire.dissect import Protocol, dissect
    from xdrgen.wire.errors import WireError

    data = read_input(args.input, hex_text=args.hex)
    protocol = Protocol.from_module(load_generated(args.x_file, frontend_options_from(args)))
    try:
        for line in dissect(args.framing, data, protocol):
            print(line)
    except WireError as exc:
        sys.stdout.flush()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
