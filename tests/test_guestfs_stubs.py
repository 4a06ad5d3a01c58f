"""The generated guestfs clients as code: shapes, lean import, generator diagnostics."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from guestfs_clients import ANNOTATIONS, gfc  # noqa: F401  (fixture)
from xdrgen.diagnostics import XdrgenError
from xdrgen.frontend.options import FrontendOptions
from xdrgen.generator import generate_file, generate_source

REPO = Path(__file__).resolve().parents[1]


def params(method: Any) -> list[tuple[str, str]]:
    return [(p.name, p.kind.name) for p in inspect.signature(method).parameters.values()]


def test_method_shapes(gfc: ModuleType) -> None:  # noqa: F811
    sync, aio = gfc.GuestfsClient, gfc.GuestfsAsyncClient
    assert params(sync.upload) == [
        ("self", "POSITIONAL_OR_KEYWORD"), ("source", "POSITIONAL_OR_KEYWORD"),
        ("remotefilename", "POSITIONAL_OR_KEYWORD"), ("progress_hint", "KEYWORD_ONLY"),
        ("progress", "KEYWORD_ONLY"), ("cancel", "KEYWORD_ONLY"),
    ]
    assert [n for n, _ in params(sync.download_offset)] == ["self", "remotefilename", "sink", "offset", "size", "progress", "cancel"]
    tar_out = params(sync.tar_out)
    assert tar_out[:3] == [("self", "POSITIONAL_OR_KEYWORD"), ("directory", "POSITIONAL_OR_KEYWORD"), ("sink", "POSITIONAL_OR_KEYWORD")]
    assert [n for n, k in tar_out if k == "KEYWORD_ONLY"] == [
        "compress", "numericowner", "excludes", "xattrs", "selinux", "acls", "progress", "cancel",
    ]
    assert inspect.signature(sync.tar_out).parameters["compress"].default is None
    assert inspect.iscoroutinefunction(aio.tar_out) and not inspect.iscoroutinefunction(aio.tar_out_iter)
    assert not hasattr(sync, "tar_out_iter")
    assert [n for n, _ in params(aio.tar_out_iter)][:2] == ["self", "directory"]  # no sink
    assert "Deprecated: use tar_in." in (sync.tgz_in.__doc__ or "")
    assert "compress (bit 0)" in (sync.tar_in.__doc__ or "")


def test_without_annotations_every_field_is_positional(tmp_path: Path, guestfs_protocol_x: Path) -> None:
    result = generate_file(guestfs_protocol_x, tmp_path, module_name="plain_guestfs", use_cache=False)
    text = result.output.read_text()
    start = text.index("    def tar_out(")
    body = text[start : text.index("\n\n", start)]
    assert "sink" not in body and "*," not in body and "compress: str," in body


def test_importing_the_module_loads_no_transport(tmp_path: Path, guestfs_protocol_x: Path) -> None:
    """Marshalling needs neither asyncio, threading nor the guestfs runtime (fresh interpreter, no site)."""
    generate_file(guestfs_protocol_x, tmp_path, options=FrontendOptions(annotations=(ANNOTATIONS,)), use_cache=False)
    code = textwrap.dedent(
        """
        import sys
        sys.path[:0] = sys.argv[1:3]
        import guestfs_protocol as m
        m.XDR_TYPES["guestfs_echo_daemon_args"].encode(m.guestfs_echo_daemon_args(["x"]))
        assert m.GuestfsClient and m.GuestfsAsyncClient
        loaded = [n for n in ("asyncio", "threading", "socket", "select") if n in sys.modules]
        loaded += [n for n in sys.modules if n.startswith("xdrgen.runtime.guestfs")]
        print(loaded)
        """
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, str(tmp_path), str(REPO)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


GUESTFS_STYLE = """
const GUESTFS_PROGRAM = 0x2000F5F5;
const GUESTFS_PROTOCOL_VERSION = 4;
struct guestfs_int_pair { int a; int b; };
struct guestfs_put_args { string path<>; guestfs_int_pair pair; int mode; };
struct guestfs_get_args { string path<>; };
struct guestfs_get_ret { int n; };
enum guestfs_procedure { GUESTFS_PROC_PUT = 1, GUESTFS_PROC_GET = 2 };
"""


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[procedures.put]\noptargs = ["pair"]\n', "optional argument 'pair' of 'put' has a type with no empty value"),
        ('[procedures.get]\nstream = "out"\n', "'get' sends a file after its reply, so it cannot also return a value"),
    ],
)
def test_generator_refuses_what_it_cannot_express(tmp_path: Path, toml: str, message: str) -> None:
    source = tmp_path / "mini.x"
    source.write_text(GUESTFS_STYLE)
    notes = tmp_path / "mini.toml"
    notes.write_text(toml)
    with pytest.raises(XdrgenError, match=message):
        generate_source(source, options=FrontendOptions(annotations=(notes,)))


def test_optional_enum_and_int_arguments(tmp_path: Path) -> None:
    source = tmp_path / "mini.x"
    source.write_text(GUESTFS_STYLE)
    notes = tmp_path / "mini.toml"
    notes.write_text('[procedures.put]\noptargs = { mode = 3 }\nstream = "in"\nstream-arg = 1\n')
    text, _ = generate_source(source, options=FrontendOptions(annotations=(notes,)))
    start = text.index("    def put(")
    body = text[start : text.index('"""\n', text.index('"""', start) + 3)]
    assert "source: _UploadSource,\n        path: str,\n        pair: guestfs_int_pair,\n        *,\n        mode: int | None = None," in body
