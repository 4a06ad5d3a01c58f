"""Compile the optional engine (``xdrgen/runtime/_engine_c/*.c``) into ``xdrgen/runtime``.

    python3 -m xdrgen._build_engine [--sanitize] [--quiet]

Used by editable/dev installs, tests and CI; the wheel build does the same
through :mod:`xdrgen.build.engine_hook`.  Without a C compiler nothing is built and
generated modules run their pure-Python code.  ``--sanitize`` builds with
AddressSanitizer and UndefinedBehaviorSanitizer (tests/engine_asan.sh).

The engine's C files (one job each, docs/compiled-engine.md "Source layout")
are compiled by one command into one extension module, ``xdrgen.runtime._engine``;
``-fvisibility=hidden`` (and engine.h) keeps what they share inside it, so only
``PyInit__engine`` is exported.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

RUNTIME = Path(__file__).parent / "runtime"
#: The engine's sources: its C files and their private header (engine.h).
SOURCE_DIR = RUNTIME / "_engine_c"


def sources() -> list[Path]:
    """The C files compiled into the engine, in a fixed order."""
    return sorted(SOURCE_DIR.glob("*.c"))


#: Flags of the normal build and of the sanitizer build.
OPTIMISE = ["-O2", "-fno-strict-aliasing"]
SANITIZE = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]


def compiler() -> list[str] | None:
    """The C compiler command, or None when there is none."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    command = shlex.split(cc)
    if not command or shutil.which(command[0]) is None:
        return None
    return command


def target(directory: Path | None = None) -> Path:
    """Where the built extension goes (beside the source by default)."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return (directory or RUNTIME) / f"_engine{suffix}"


def build(
    output: Path | None = None, *, sanitize: bool = False, quiet: bool = False
) -> Path | None:
    """Compile the engine; returns the file made, or None without a compiler.
    Raises CalledProcessError when the compiler fails."""
    cc = compiler()
    if cc is None:
        return None
    out = output or target()
    include = sysconfig.get_paths()["include"]
    flags = SANITIZE if sanitize else OPTIMISE
    command = [
        *cc,
        *flags,
        "-Wall",
        "-Werror=implicit-function-declaration",
        "-fPIC",
        "-fvisibility=hidden",
        "-shared",
        "-I",
        include,
        *map(str, sources()),
        "-o",
        str(out),
    ]
    if not quiet:
        print(" ".join(command))
    subprocess.run(command, check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sanitize", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    made = build(sanitize=args.sanitize, quiet=args.quiet)
    if made is None:
        print("no C compiler: the engine is not built (pure Python)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
