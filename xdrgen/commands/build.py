"""``xdrgen build``: generate a project's modules from its ``[tool.xdrgen]`` table."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from xdrgen.build.config import ProjectConfig

from xdrgen.diagnostics import display_path

#: ``--check`` found missing or stale outputs.
EXIT_STALE = 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "build",
        help="generate a project's modules from [tool.xdrgen] in pyproject.toml",
        description=(
            "Generate every module listed in [tool.xdrgen] of DIR/pyproject.toml, "
            "regenerating only those whose inputs, options or generator version changed."
        ),
    )
    parser.add_argument(
        "--project",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="directory holding pyproject.toml (default: .)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="write nothing; list missing or stale outputs and exit 1 if there are any (for CI)",
    )
    mode.add_argument("--force", action="store_true", help="regenerate every module")
    parser.add_argument(
        "--pyc",
        action="store_true",
        help="also write (with --check: also check) each module's .pyc, as pyc = true in [tool.xdrgen] does",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing when all is well")
    parser.add_argument(
        "--annotations",
        action="append",
        default=[],
        type=Path,
        metavar="FILE.toml",
        help="a procedure-annotation file for every module, after those in [tool.xdrgen]",
    )
    parser.set_defaults(handler=run)


def with_annotations(config: ProjectConfig, extra: tuple[Path, ...]) -> ProjectConfig:
    """``config`` with ``extra`` annotation files appended to every module's options."""
    modules = tuple(
        replace(m, options=replace(m.options, annotations=m.options.annotations + extra)) for m in config.modules
    )
    return replace(config, modules=modules)


def run(args: argparse.Namespace) -> int:
    from xdrgen.build import build_project, check_project, load_config

    config = load_config(args.project)
    if args.annotations:
        config = with_annotations(config, tuple(p.resolve() for p in args.annotations))
    if args.pyc:
        config = replace(config, pyc=True)
    if args.check:
        stale = check_project(config)
        for item in stale:
            print(f"stale: {item.describe()}")
        if stale:
            print(
                f"{len(stale)} of {len(config.modules)} generated module(s) out of date; run 'xdrgen build'"
            )
            return EXIT_STALE
        if not args.quiet:
            print(f"{len(config.modules)} generated module(s) up to date")
        return 0
    report = build_project(config, force=args.force)
    for path in report.written:
        print(f"{'compiled' if path.suffix == '.pyc' else 'generated'} {display_path(str(path))}")
    for path in report.removed:
        print(f"removed {display_path(str(path))} (no longer configured)")
    if not args.quiet and not report.written:
        print(f"{len(report.up_to_date)} generated module(s) up to date")
    return 0
