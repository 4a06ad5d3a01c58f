"""The system preprocessor (--cpp): run ``cpp -C`` as rpcgen does and keep only what
comes from the .x files."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from xdrgen.diagnostics import Diagnostic, Position, XdrgenError, error
from xdrgen.frontend.preprocessing.limits import CPP_TIMEOUT_SECONDS
from xdrgen.frontend.preprocessing.output import PreprocessedSource, quote_path, unquote

_CPP_MARKER_RE = re.compile(r'^# ([0-9]+) "((?:[^"\\]|\\.)*)"((?: [0-9]+)*)\s*$')
_CPP_ERROR_RE = re.compile(
    r"^(.+?):([0-9]+):([0-9]+): (?:fatal )?error: (.*)$", re.MULTILINE
)


def run_system_cpp(
    path: Path,
    display: str,
    symbols: Mapping[str, str],
    include_dirs: tuple[Path, ...],
    text: str | None,
) -> PreprocessedSource:
    """Run ``cpp -C`` as rpcgen does, then keep only what comes from the .x files."""
    cpp = shutil.which("cpp")
    if cpp is None:
        raise error(
            "the system C preprocessor 'cpp' was not found on PATH (needed by --cpp)"
        )
    command = [cpp, "-C"]
    command += [f"-D{name}={value}" for name, value in symbols.items()]
    command += [f"-I{directory}" for directory in include_dirs]
    if text is None:
        if not path.is_file():
            raise error(f"cannot read '{display}': not a regular file")
        command.append(str(path))
        cpp_name = str(path)
    else:
        # Quoted includes from stdin are looked up in the cwd, then beside the file.
        command += ["-iquote", str(path.parent), "-"]
        cpp_name = "<stdin>"
    try:
        completed = subprocess.run(
            command,
            input=text if text is not None else None,
            stdin=None if text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=CPP_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise error(
            f"cpp did not finish within {CPP_TIMEOUT_SECONDS} s on '{display}'"
        ) from None
    except OSError as exc:
        raise error(f"cannot run cpp: {exc}") from None
    if completed.returncode != 0:
        raise _cpp_failure(completed.stderr, cpp_name, display)
    out_text, files = _filter_cpp_output(completed.stdout, cpp_name, display)
    return PreprocessedSource(
        out_text, display, (path, *[f for f in files if f != path])
    )


def _cpp_failure(stderr: str, cpp_name: str, display: str) -> XdrgenError:
    first = _CPP_ERROR_RE.search(stderr)
    note = "cpp said:\n" + stderr.rstrip()
    if first is None:
        return XdrgenError(Diagnostic("error", "cpp failed", None, (note,)))
    file = display if first.group(1) == cpp_name else first.group(1)
    pos = Position(file, int(first.group(2)), int(first.group(3)))
    return XdrgenError(Diagnostic("error", f"cpp: {first.group(4)}", pos, (note,)))


def _filter_cpp_output(
    output: str, cpp_name: str, display: str
) -> tuple[str, list[Path]]:
    """Drop what cpp adds from <built-in>, <command-line> and its implicit system
    includes (their comments would survive -C); rename the main file to ``display``."""
    out = [f"# 1 {quote_path(display)}"]
    files: list[Path] = []
    stack: list[str] = [cpp_name]
    keeping = False
    for line in output.split("\n"):
        match = _CPP_MARKER_RE.match(line) if line.startswith("# ") else None
        if match is None:
            if keeping:
                out.append(line)
            continue
        name = unquote(match.group(2))
        flags = match.group(3).split()
        if "1" in flags:
            stack.append(name)
        elif "2" in flags:
            while len(stack) > 1 and stack[-1] != name:
                stack.pop()
            stack[-1] = name
        else:
            stack[-1] = name
        keeping = stack[0] == cpp_name
        if not keeping:
            continue
        if "1" in flags and "3" not in flags and not name.startswith("<"):
            files.append(Path(name))
        shown = display if name == cpp_name else name
        tail = " " + " ".join(flags) if flags else ""
        # Blank lines and markers just before a marker carry no information.
        while len(out) > 1 and (out[-1] == "" or out[-1].startswith("# ")):
            out.pop()
        marker = f"# {match.group(1)} {quote_path(shown)}{tail}"
        if len(out) > 1 or marker != out[0]:
            out.append(marker)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n", _unique(files)


def _unique(paths: Iterable[Path]) -> list[Path]:
    seen: set[Path] = set()
    result = []
    for path in paths:
        if path not in seen:
            seen.add(path)
            result.append(path)
    return result
