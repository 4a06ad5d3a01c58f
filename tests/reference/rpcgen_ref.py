"""rpcgen's C for a .x file, built into a helper process: the reference implementation.

``build_reference(x_file)`` runs Debian's ``rpcgen -h`` / ``rpcgen -c`` on a
sanitized copy of the file, adds a table {type name -> xdr routine, sizeof} and
the request loop in ``ref_driver.c``, and compiles it against libtirpc.  Builds
are cached by content hash under the user's cache directory (never in the repo).

The helper runs as a child process with a memory rlimit, so hostile lengths that
make rpcgen's code try to allocate gigabytes fail inside the child instead of
exhausting the machine, and a crash there is reported as ``ReferenceCrashed``.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

DRIVER_SOURCE = Path(__file__).with_name("ref_driver.c")

#: Bump when the build recipe changes in a way the hashed inputs do not show.
RECIPE_VERSION = "3"

#: Address-space limit for the helper: rpcgen's decoders allocate a declared length
#: before reading it, up to 4 GiB for ``<>`` items.
DEFAULT_MEMORY_LIMIT = 1 << 30

_OP_ROUNDTRIP = 1
_OP_BENCH = 2
_OP_COUNT = 3

_REQUEST = struct.Struct(">IIII")
_RESPONSE = struct.Struct(">III")
_BENCH = struct.Struct(">QQQ")

# rpcgen's own prototypes, exactly as it writes them ("extern  bool_t xdr_T (XDR *, T*);"):
# '%' lines of the .x may declare library routines too (rpcb_prot.x's xdr_netbuf).
_HEADER_DECL = re.compile(r"^extern\s+bool_t\s+xdr_(\w+) \(XDR \*, \1\*?\);$", re.MULTILINE)
_PASSTHROUGH_INCLUDE = re.compile(r'^%\s*#\s*include\s*([<"])([^>"]+)[>"]')


class ReferenceError(Exception):
    """The reference could not be built or used."""


class ReferenceUnavailable(ReferenceError):
    """rpcgen, gcc or libtirpc is not installed."""


class ReferenceCrashed(ReferenceError):
    """The helper process died while answering a request."""


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """What rpcgen's code did with one input."""

    #: The decode routine returned TRUE.
    decoded: bool
    #: ``xdr_getpos`` after decoding (rpcgen ignores bytes after that).
    consumed: int
    #: The re-encoding of the decoded object; None when decoding or encoding failed.
    reencoded: bytes | None

    @property
    def ok(self) -> bool:
        return self.reencoded is not None


@dataclass(frozen=True, slots=True)
class BenchResult:
    """Nanoseconds per operation measured by a C loop inside the helper."""

    iterations: int
    decode_encode_ns: float
    decode_ns: float
    encode_ns: float


def reference_unavailable() -> str | None:
    """Why the reference cannot be built here, or None when it can."""
    for tool in ("rpcgen", "gcc", "pkg-config"):
        if shutil.which(tool) is None:
            return f"{tool} not found (install Debian's rpcsvc-proto, gcc and libtirpc-dev)"
    probe = subprocess.run(
        ["pkg-config", "--exists", "libtirpc"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return "pkg-config does not know libtirpc (install Debian's libtirpc-dev)"
    return None


def rpcgen_type_names(header_text: str) -> list[str]:
    """Every type rpcgen wrote an ``xdr_<type>`` routine for, in header order."""
    seen: dict[str, None] = {}
    for match in _HEADER_DECL.finditer(header_text):
        seen.setdefault(match.group(1), None)
    return list(seen)


def sanitize_x(
    text: str, include_dirs: Sequence[Path], imported: Sequence[str] = ()
) -> str:
    """The .x as rpcgen should read it here; line numbers stay the same.

    - ``%#include`` lines whose header does not exist here are blanked: upstream
      files include their projects' private headers (libvirt's "internal.h",
      libguestfs's <config.h>); the XDR routines do not need them.
    - An include of the header of an ``imported`` .x stem (nis_callback.x's
      ``<rpcsvc/nis.h>``) is pointed at rpcgen's header for it, built alongside:
      the C then sees what xdrgen sees with ``--import``.
    - A ``%`` line that a trailing backslash continues is joined with the next
      line (without that line's own ``%``), as xdrgen reads it; the line taken
      becomes empty.  rpcgen fails on such lines: its cpp splices them, so the
      continuation reaches rpcgen as XDR text or as a '%' out of column 1
      (``rpcgen -h nis.x`` fails on ``OWNER_DEFAULT`` and ``ENTRY_VAL``).
    """
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines):
        end = number
        while lines[number].startswith("%") and lines[number].rstrip("\r\n").endswith("\\"):
            if end + 1 >= len(lines):
                break
            end += 1
            continuation = lines[end].removeprefix("%").strip()
            joined = lines[number].rstrip("\r\n")[:-1] + " " + continuation
            lines[number] = joined + "\n"
            lines[end] = "\n"
        line = lines[number]
        match = _PASSTHROUGH_INCLUDE.match(line)
        if match is None:
            continue
        header = match.group(2)
        stem = Path(header).name.removesuffix(".h")
        if stem in imported:
            lines[number] = f'%#include "{stem}.h"\n'
        elif not any((directory / header).is_file() for directory in include_dirs):
            lines[number] = "\n"
    return "".join(lines)


_QUOTED_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.MULTILINE)


def x_sources(
    x_file: Path, include_dirs: Sequence[Path], imported: Sequence[str] = ()
) -> dict[str, str]:
    """Sanitized text of ``x_file`` and of the .x files it ``#include``s with
    quotes, by path relative to ``x_file``'s directory (rpcgen's cpp reads them
    beside the copy)."""
    texts: dict[str, str] = {}
    pending = [Path(x_file.name)]
    while pending:
        relative = pending.pop()
        key = relative.as_posix()
        if key in texts:
            continue
        source = x_file.parent / relative
        text = source.read_text(encoding="utf-8")
        texts[key] = sanitize_x(text, [source.parent, *include_dirs], imported)
        for name in _QUOTED_INCLUDE.findall(text):
            if (source.parent / name).is_file():
                pending.append(relative.parent / name)
    return texts


#: Types of the RPC library that xdrgen's model has as builtins (resolve.py,
#: xdrgen.runtime.rpclib): their C type, for the table of library routines.
#: ``wrapstring`` is what rpcgen sends a lone ``string`` procedure argument or result with.
LIBRARY_C_TYPES = {
    "netobj": "netobj",
    "des_block": "des_block",
    "netbuf": "struct netbuf",
    "wrapstring": "char *",
}

#: Always given to gcc.  ``-include rpc/rpc.h``: when <rpc/rpc.h> already includes
#: a header generated from this very .x (libtirpc's rpcb_prot.h), its types come
#: first and rpcgen's header, with the same include guard, steps aside.  The rest
#: supply names the .x files take from other platforms' C: FreeBSD's __FBSDID
#: (crypt.x) and xdr_<T> routines for libtirpc's rpcprog_t/rpcvers_t/rpcproc_t
#: typedefs, which libtirpc provides as xdr_rpcprog() & co. only.
BASE_CFLAGS = (
    "-include",
    "rpc/rpc.h",
    "-D__FBSDID(s)=",
    "-Dxdr_rpcprog_t=xdr_u_int32_t",
    "-Dxdr_rpcvers_t=xdr_u_int32_t",
    "-Dxdr_rpcproc_t=xdr_u_int32_t",
)


def _cache_root() -> Path:
    explicit = os.environ.get("XDRGEN_REF_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xdrgen" / "rpcgen-ref"


def _run(argv: Sequence[str], cwd: Path) -> str:
    result = subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ReferenceError(
            f"{' '.join(argv)} failed ({result.returncode}) in {cwd}:\n{result.stderr}"
        )
    return result.stdout


def _tool_versions() -> str:
    rpcgen = subprocess.run(
        ["rpcgen", "--version"], capture_output=True, text=True, check=False
    )
    gcc = subprocess.run(
        ["gcc", "--version"], capture_output=True, text=True, check=False
    )
    first_gcc_line = gcc.stdout.splitlines()[0] if gcc.stdout else ""
    return rpcgen.stdout + rpcgen.stderr + first_gcc_line


def _pkg_config_libtirpc() -> list[str]:
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libtirpc"],
        capture_output=True,
        text=True,
        check=True,
    )
    return flags.stdout.split()


def _table_source(header: str, type_names: Sequence[str]) -> str:
    entries = "\n".join(
        f'    {{"{name}", (xdrproc_t)xdr_{name}, sizeof({LIBRARY_C_TYPES.get(name, name)})}},'
        for name in type_names
    )
    return f"""/* Generated by tests/reference/rpcgen_ref.py: type table for ref_driver.c. */
#include <stdint.h>
#include "{header}"

struct ref_type {{
    const char *name;
    xdrproc_t proc;
    size_t size;
}};

const struct ref_type REF_TYPES[] = {{
{entries}
    {{0, 0, 0}}
}};
const uint32_t REF_NTYPES = {len(type_names)};
"""


def build_reference(
    x_file: Path,
    type_names: Sequence[str] | None = None,
    *,
    cflags: Sequence[str] = (),
    rpcgen_flags: Sequence[str] = (),
    defines: Mapping[str, str] | None = None,
    include_dirs: Sequence[Path] = (),
    imports: Sequence[Path] = (),
    library_types: Sequence[str] = (),
    cache_dir: Path | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
) -> Reference:
    """Build (or reuse) the reference helper for ``x_file`` and start it.

    ``type_names`` defaults to every type rpcgen generated a routine for.
    ``defines`` become ``-DNAME=VALUE`` for rpcgen's cpp run and for gcc;
    ``rpcgen_flags`` are extra rpcgen options (``-N`` for multi-argument procedures).
    ``imports`` are .x files whose types ``x_file`` uses (xdrgen's ``--import``):
    rpcgen's C for them is built in too.  ``library_types`` (keys of
    ``LIBRARY_C_TYPES``) join the table with the C library's own routines.
    """
    reason = reference_unavailable()
    if reason is not None:
        raise ReferenceUnavailable(reason)
    x_file = Path(x_file)
    defines = dict(defines or {})
    search = [
        x_file.parent,
        *include_dirs,
        Path("/usr/include"),
        Path("/usr/include/tirpc"),
    ]
    stem = re.sub(r"\W", "_", x_file.stem)
    import_stems = [re.sub(r"\W", "_", Path(other).stem) for other in imports]
    units: list[tuple[str, dict[str, str]]] = [
        (import_stem, x_sources(Path(other), search, import_stems))
        for import_stem, other in zip(import_stems, imports)
    ]
    units.append((stem, x_sources(x_file, search, import_stems)))
    define_flags = [f"-D{name}={value}" for name, value in sorted(defines.items())]
    extra_includes = [f"-I{directory}" for directory in include_dirs]

    digest = hashlib.sha256()
    for part in (
        RECIPE_VERSION,
        stem,
        *(f"{unit}\0{name}\0{text}" for unit, texts in units for name, text in texts.items()),
        DRIVER_SOURCE.read_text(encoding="utf-8"),
        "\0".join(
            define_flags + list(BASE_CFLAGS) + list(cflags) + extra_includes + ["|", *rpcgen_flags]
        ),
        "\0".join(type_names) if type_names is not None else "\0*ALL*",
        "\0".join(library_types),
        _tool_versions(),
    ):
        digest.update(part.encode())
        digest.update(b"\0\1")
    root = cache_dir if cache_dir is not None else _cache_root()
    target = root / digest.hexdigest()[:32]
    if not (target / "ref_driver").is_file():
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
        try:
            _build(
                work,
                units,
                type_names,
                library_types,
                [*rpcgen_flags, *define_flags],
                define_flags,
                extra_includes,
                [*BASE_CFLAGS, *cflags],
            )
            try:
                work.rename(target)
            except OSError:
                # Another process finished the same build first; its result is identical.
                if not (target / "ref_driver").is_file():
                    raise
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    names = (target / "types.txt").read_text(encoding="utf-8").split()
    return Reference(target / "ref_driver", names, memory_limit=memory_limit)


def _build(
    work: Path,
    units: Sequence[tuple[str, Mapping[str, str]]],
    type_names: Sequence[str] | None,
    library_types: Sequence[str],
    rpcgen_options: Sequence[str],
    define_flags: Sequence[str],
    extra_includes: Sequence[str],
    cflags: Sequence[str],
) -> None:
    """rpcgen -h / -c for each unit (imports first, the file under test last)."""
    for unit, texts in units:
        unit_dir = work / unit
        for name, text in texts.items():
            target = unit_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        main = next(iter(texts))
        if main != f"{unit}.x":
            (unit_dir / main).rename(unit_dir / f"{unit}.x")
        _run(["rpcgen", *rpcgen_options, "-h", f"{unit}.x", "-o", f"../{unit}.h"], unit_dir)
        _run(["rpcgen", *rpcgen_options, "-c", f"{unit}.x", "-o", f"../{unit}.c"], unit_dir)
    stem = units[-1][0]
    available = rpcgen_type_names((work / f"{stem}.h").read_text(encoding="utf-8"))
    if type_names is None:
        names = available
    else:
        missing = sorted(set(type_names) - set(available))
        if missing:
            raise ReferenceError(
                f"rpcgen generated no routine for: {', '.join(missing)}"
            )
        names = list(type_names)
    names += [name for name in library_types if name not in names]
    (work / "ref_table.c").write_text(
        _table_source(f"{stem}.h", names), encoding="utf-8"
    )
    shutil.copyfile(DRIVER_SOURCE, work / "ref_driver.c")
    _run(
        [
            "gcc",
            "-O2",
            "-w",
            *define_flags,
            *extra_includes,
            *cflags,
            "-I.",
            "-o",
            "ref_driver",
            "ref_driver.c",
            "ref_table.c",
            *(f"{unit}.c" for unit, _ in units),
            *_pkg_config_libtirpc(),
        ],
        work,
    )
    (work / "types.txt").write_text("\n".join(names) + "\n", encoding="utf-8")


class Reference:
    """A running reference helper; use as a context manager or call ``close``."""

    def __init__(
        self, executable: Path, type_names: Sequence[str], *, memory_limit: int
    ) -> None:
        self.executable = executable
        self.type_names: tuple[str, ...] = tuple(type_names)
        self._index = {name: number for number, name in enumerate(self.type_names)}
        self._memory_limit = memory_limit
        self._stderr: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._start()
        count = self._request(_OP_COUNT, 0, 0, b"")[1]
        if count != len(self.type_names):
            raise ReferenceError(
                f"{executable} has {count} types, expected {len(type_names)}"
            )

    def _start(self) -> None:
        limit = self._memory_limit

        def limit_memory() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [str(self.executable)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            preexec_fn=limit_memory,
        )

    def _crash(self, what: str) -> ReferenceCrashed:
        process = self._process
        assert process is not None and self._stderr is not None
        code = process.wait()
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode(errors="replace")
        self._process = None
        self._start()  # keep serving later requests
        return ReferenceCrashed(f"reference helper died ({code}) during {what}: {tail}")

    def _request(
        self, op: int, index: int, arg: int, data: bytes
    ) -> tuple[int, int, bytes]:
        process = self._process
        if process is None:
            raise ReferenceError("reference helper is closed")
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(_REQUEST.pack(op, index, arg, len(data)))
            process.stdin.write(data)
            process.stdin.flush()
            head = process.stdout.read(_RESPONSE.size)
            if len(head) != _RESPONSE.size:
                raise self._crash(f"op {op} on {self.type_names[index]!r}")
            status, consumed, length = _RESPONSE.unpack(head)
            payload = process.stdout.read(length)
            if len(payload) != length:
                raise self._crash(f"op {op} on {self.type_names[index]!r}")
        except BrokenPipeError:
            raise self._crash(f"op {op} on {self.type_names[index]!r}") from None
        return status, consumed, payload

    def _type_index(self, type_name: str) -> int:
        try:
            return self._index[type_name]
        except KeyError:
            raise ReferenceError(
                f"type {type_name!r} is not in the reference table"
            ) from None

    def roundtrip(self, type_name: str, data: bytes) -> RoundTrip:
        """Decode ``data`` as ``type_name`` with rpcgen's code and re-encode the result."""
        status, consumed, payload = self._request(
            _OP_ROUNDTRIP, self._type_index(type_name), 0, bytes(data)
        )
        return RoundTrip(
            decoded=status != 0,
            consumed=consumed,
            reencoded=payload if status == 1 else None,
        )

    def bench(self, type_name: str, data: bytes, iterations: int) -> BenchResult:
        """Time rpcgen's decode+encode of ``data`` in a C loop (no Python in the loop)."""
        status, _, payload = self._request(
            _OP_BENCH, self._type_index(type_name), iterations, bytes(data)
        )
        if status != 1:
            raise ReferenceError(
                f"rpcgen's code does not decode the {type_name} bench input"
            )
        both, decode, encode = _BENCH.unpack(payload)
        return BenchResult(
            iterations, both / iterations, decode / iterations, encode / iterations
        )

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.close()
            process.wait()
            process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Reference:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
