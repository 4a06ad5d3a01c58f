"""``xdrgen generate FILE.x -o OUTDIR``: write the Python module for a .x file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xdrgen.commands.common import add_frontend_arguments, frontend_options_from


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "generate",
        help="generate a typed Python module with XDR marshallers from a .x file",
        description="Generate one Python module (types, marshallers, procedure tables) from a .x file.",
    )
    parser.add_argument(
        "source", type=Path, metavar="FILE.x", help="the XDR / ONC-RPC interface file"
    )
    parser.add_argument(
        "-o", "--output-dir", type=Path, required=True, metavar="OUTDIR"
    )
    parser.add_argument(
        "--module",
        dest="module_name",
        metavar="NAME",
        help="module name (default: the .x stem)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="always parse and render, ignoring the manifest cache",
    )
    parser.add_argument(
        "--pyc",
        action="store_true",
        help="also write the module's .pyc into OUTDIR/__pycache__ (checked-hash, see docs/build.md)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing on success"
    )
    add_frontend_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from xdrgen.generator import generate_file

    module_name: str | None = args.module_name
    if module_name is not None and not module_name.isidentifier():
        print(
            f"xdrgen generate: --module {module_name!r} is not a valid Python identifier",
            file=sys.stderr,
        )
        return 2
    result = generate_file(
        args.source,
        args.output_dir,
        module_name=module_name,
        options=frontend_options_from(args),
        use_cache=not args.no_cache,
        pyc=args.pyc,
    )
    if not args.quiet:
        state = "written" if result.changed else "up to date"
        print(f"{result.output}: {state}")
        if result.pyc is not None:
            state = "written" if result.pyc in result.written else "up to date"
            print(f"{result.pyc}: {state}")
    return 0
