"""``xdrgen check``: parse and validate .x files, one summary line per file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xdrgen.commands.common import add_frontend_arguments, frontend_options_from
from xdrgen.diagnostics import XdrgenError
from xdrgen.model import EnumDef, ProtocolStyle, XdrModule


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "check",
        help="parse and validate .x files",
        description="Parse and validate .x files; print one summary line per file.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE.x")
    add_frontend_arguments(parser)
    parser.set_defaults(handler=run)


def summarize(module: XdrModule, shown_name: str) -> str:
    types = len(module.types)
    enums = sum(isinstance(t, EnumDef) for t in module.types.values())
    parts = [
        f"{len(module.constants)} constants",
        f"{types} types ({enums} enums)",
    ]
    for table in module.procedure_tables:
        streams = sum(p.annotations.stream is not None for p in table.procedures)
        label = (
            f"program {table.name} 0x{table.program:08X} version {table.version}"
            if table.style is ProtocolStyle.ONCRPC
            else f"{table.style.value} program {table.name} 0x{table.program:08X} "
            f"version {table.version}"
        )
        highest = max((p.number for p in table.procedures), default=0)
        detail = f"{len(table.procedures)} procedures, highest {highest}"
        if streams:
            detail += f", {streams} with streams"
        parts.append(f"{label}: {detail}")
    if not module.procedure_tables:
        parts.append("no procedures")
    return f"{shown_name}: " + "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    from xdrgen.frontend import load

    options = frontend_options_from(args)
    status = 0
    for path in args.files:
        try:
            module = load(path, options)
        except XdrgenError as exc:
            print(exc.render(), file=sys.stderr)
            status = 2
            continue
        for warning in module.warnings:
            print(warning.render(), file=sys.stderr)
        print(summarize(module, str(path)))
    return status
