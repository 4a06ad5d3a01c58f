"""Arguments shared by the commands that read .x files."""

from __future__ import annotations

import argparse
from pathlib import Path

from xdrgen.diagnostics import error
from xdrgen.frontend.options import FrontendOptions


def add_frontend_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading .x files")
    group.add_argument(
        "-D",
        dest="defines",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="define a preprocessor symbol and an integer constant (VALUE defaults to 1)",
    )
    group.add_argument(
        "--constants-from",
        action="append",
        default=[],
        type=Path,
        metavar="HEADER",
        help="take missing constants from #defines and enum members of a C header",
    )
    group.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        type=Path,
        metavar="OTHER.x",
        help="make another .x file's definitions available (its module is imported)",
    )
    group.add_argument(
        "-I",
        dest="include_dirs",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="search DIR for #include \"...\" files",
    )
    group.add_argument(
        "--libvirt-api",
        dest="libvirt_api",
        action="append",
        default=[],
        type=Path,
        metavar="XML",
        help="libvirt's API description (libvirt-api.xml): API names and error domains of the "
        "server skeleton's \"not supported\" answers",
    )
    group.add_argument(
        "--annotations",
        action="append",
        default=[],
        type=Path,
        metavar="FILE.toml",
        help="attach the procedure annotations of a TOML file (streams, optional arguments, ...)",
    )
    group.add_argument(
        "--cpp",
        action="store_true",
        help="run the system C preprocessor (cpp) instead of the built-in subset",
    )


def parse_define(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if not name.isidentifier():
        raise error(f"-D {text!r}: {name!r} is not a valid identifier")
    return name, (value.strip() if sep else "1")


def frontend_options_from(args: argparse.Namespace) -> FrontendOptions:
    return FrontendOptions(
        defines=dict(parse_define(d) for d in args.defines),
        constants_from=tuple(args.constants_from),
        imports=tuple(args.imports),
        include_dirs=tuple(args.include_dirs),
        system_cpp=bool(args.cpp),
        libvirt_api=tuple(args.libvirt_api),
        annotations=tuple(args.annotations),
    )
