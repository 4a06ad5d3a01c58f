"""Front end: tokens, syntax tree, resolved model, real upstream files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from golden_files import check_golden
from xdrgen.diagnostics import XdrgenError
from xdrgen.frontend import FrontendOptions, load
from xdrgen.frontend.lexer import tokenize
from xdrgen.frontend.parser import parse
from xdrgen.frontend.syntax import dump
from xdrgen.model import (
    DeclKind,
    EnumDef,
    NamedType,
    Primitive,
    PrimitiveType,
    ProtocolStyle,
    StructDef,
    TypedefDef,
    UnionDef,
    XdrModule,
)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "protocols" / "demo.x"
GOLDEN = Path(__file__).parent / "golden"


def demo_text() -> str:
    return DEMO.read_text(encoding="utf-8")


def test_demo_tokens_golden() -> None:
    tokens = tokenize(demo_text(), "demo.x")
    text = "".join(f"{p.line}:{p.col} {kind} {value!r}\n" for kind, value, p in tokens)
    check_golden(GOLDEN / "demo.tokens", text)


def test_demo_syntax_tree_golden() -> None:
    spec, _ = parse(demo_text(), "demo.x")
    check_golden(GOLDEN / "demo.tree", dump(spec))


def test_exact_tokens_of_a_small_input() -> None:
    source = "const MAX = 0x10; /* doc */\nenum e { A = -1, B = 017 };\n%pass through\n"
    tokens = [(kind, value, (p.line, p.col)) for kind, value, p in tokenize(source, "t.x")]
    assert tokens == [
        ("CONST", "const", (1, 1)),
        ("IDENT", "MAX", (1, 7)),
        ("=", "=", (1, 11)),
        ("INTEGER", "0x10", (1, 13)),
        (";", ";", (1, 17)),
        ("ENUM", "enum", (2, 1)),
        ("IDENT", "e", (2, 6)),
        ("{", "{", (2, 8)),
        ("IDENT", "A", (2, 10)),
        ("=", "=", (2, 12)),
        ("INTEGER", "-1", (2, 14)),
        (",", ",", (2, 16)),
        ("IDENT", "B", (2, 18)),
        ("=", "=", (2, 20)),
        ("INTEGER", "017", (2, 22)),
        ("}", "}", (2, 26)),
        (";", ";", (2, 27)),
        ("PASSTHROUGH", "pass through", (3, 1)),
    ]


def test_line_markers_map_positions(tmp_path: Path) -> None:
    text = '# 1 "main.x"\nconst A = 1;\n# 7 "other.x"\nconst B = 2;\n'
    tokens = tokenize(text, "main.x")
    positions = {value: (p.file, p.line, p.col) for _, value, p in tokens if value in ("A", "B")}
    assert positions == {"A": ("main.x", 1, 7), "B": ("other.x", 7, 7)}


def test_demo_model_covers_every_construct() -> None:
    module = load(DEMO)
    kinds = set()
    primitives = set()
    for definition in module.types.values():
        decls = []
        if isinstance(definition, StructDef):
            decls = definition.fields
        elif isinstance(definition, UnionDef):
            decls = [arm.declaration for arm in definition.arms]
            if definition.default is not None:
                decls.append(definition.default)
        elif isinstance(definition, TypedefDef):
            decls = [definition.declaration]
        for decl in decls:
            kinds.add(decl.kind)
            if isinstance(decl.type, PrimitiveType):
                primitives.add(decl.type.primitive)
    assert kinds == set(DeclKind)
    assert primitives >= {
        Primitive.INT,
        Primitive.UINT,
        Primitive.HYPER,
        Primitive.UHYPER,
        Primitive.FLOAT,
        Primitive.DOUBLE,
        Primitive.BOOL,
    }
    styles = {table.style for table in module.procedure_tables}
    assert styles == {ProtocolStyle.ONCRPC, ProtocolStyle.LIBVIRT}
    assert any(p.annotations.stream for t in module.procedure_tables for p in t.procedures)
    assert any(isinstance(t, UnionDef) and t.default is not None for t in module.types.values())
    assert any(getattr(t, "nested_in", None) for t in module.types.values()) or (
        REPO / "protocols" / "demo_rfc_extras.x"
    ).is_file()


def test_doc_comments_attach_to_definitions_members_and_fields() -> None:
    source = """
/* The colour. */
enum colour {
    /* Pure red. */
    RED = 1,

    /* Detached: a blank line follows. */

    GREEN = 2
};
struct pixel {
    /* Where it is. */
    int x;
    int y; /* insert@1 */
    int z; /* plain trailing note */
};
"""
    module = _load_text(source)
    colour = module.types["colour"]
    assert isinstance(colour, EnumDef)
    assert colour.doc == "The colour."
    assert [m.doc for m in colour.members] == ["Pure red.", None]
    pixel = module.types["pixel"]
    assert isinstance(pixel, StructDef)
    assert pixel.fields[0].doc == "Where it is."
    assert pixel.fields[1].annotations.insert == 1
    assert pixel.fields[1].doc is None
    assert pixel.fields[2].doc == "plain trailing note"


def _load_text(source: str, options: FrontendOptions | None = None) -> XdrModule:
    import tempfile

    directory = Path(tempfile.mkdtemp())
    path = directory / "t.x"
    path.write_text(source)
    return load(path, options or FrontendOptions())


def test_constants_forward_references_and_rpcgen_type_names() -> None:
    source = """
const B = A;
const A = 0x80000000;
typedef int64_t big;
typedef u_int small;
struct s { unsigned char c; unsigned short h; unsigned u; long l; struct s *next; };
"""
    module = _load_text(source)
    assert module.constants["B"].value == 2**31
    big = module.types["big"]
    assert isinstance(big, TypedefDef) and isinstance(big.declaration.type, PrimitiveType)
    assert big.declaration.type.primitive is Primitive.HYPER
    s = module.types["s"]
    assert isinstance(s, StructDef)
    assert [f.type.primitive for f in s.fields[:4]] == [  # type: ignore[union-attr]
        Primitive.UINT,
        Primitive.UINT,
        Primitive.UINT,
        Primitive.INT,
    ]
    assert s.fields[4].kind is DeclKind.OPTIONAL


def test_own_definition_of_a_builtin_name_wins() -> None:
    module = _load_text("typedef unsigned int int64_t;\nstruct s { int64_t x; };\n")
    s = module.types["s"]
    assert isinstance(s, StructDef)
    ref = s.fields[0].type
    assert isinstance(ref, NamedType) and ref.name == "int64_t"


def test_external_constants_from_defines() -> None:
    module = _load_text("typedef opaque uuid[UUID_LEN];\n", FrontendOptions(defines={"UUID_LEN": "16"}))
    uuid = module.types["uuid"]
    assert isinstance(uuid, TypedefDef) and uuid.declaration.size == 16
    # -D is also a cpp macro (as with rpcgen): the preprocessor substituted it.
    header = Path(__import__("tempfile").mkdtemp()) / "consts.h"
    header.write_text("#define UUID_LEN (8 << 1)\nenum { FLAG_A = 1, FLAG_B };\n")
    module = _load_text(
        "typedef opaque uuid[UUID_LEN];\nconst F = FLAG_B;\n", FrontendOptions(constants_from=(header,))
    )
    assert module.external_constants == {"FLAG_B": 2, "UUID_LEN": 16}
    assert module.constants["F"].value == 2
    with pytest.raises(XdrgenError, match="undefined constant 'UUID_LEN'"):
        _load_text("typedef opaque uuid[UUID_LEN];\n")


def test_two_parses_in_one_process_do_not_interfere() -> None:
    sources = {
        "a": "struct a { int x; };\n" * 1 + "const A_MAX = 3;\n" * 1,
        "b": "enum b { B1 = 1, B2 = 2 };\n",
    }
    results: dict[str, object] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for _ in range(50):
                spec, _ = parse(sources[name], f"{name}.x")
                results[name] = dump(spec)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in sources for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results["a"] == dump(parse(sources["a"], "a.x")[0])
    assert results["b"] == dump(parse(sources["b"], "b.x")[0])
    with pytest.raises(XdrgenError):
        parse("struct broken {", "broken.x")
    assert dump(parse(sources["b"], "b.x")[0]) == results["b"]


def test_parsing_writes_no_file(tmp_path: Path) -> None:
    """Run a full check in a fresh process, cwd an empty dir; nothing may appear anywhere."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    package_dir = REPO / "xdrgen"
    before = {p: p.stat().st_mtime_ns for p in package_dir.rglob("*") if "__pycache__" not in p.parts}
    script = (
        "import sys; sys.dont_write_bytecode = True\n"
        "from pathlib import Path\n"
        "from xdrgen.frontend import load\n"
        f"load(Path({str(DEMO)!r}))\n"
    )
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    subprocess.run([sys.executable, "-c", script], cwd=workdir, check=True, env=env)
    assert list(workdir.iterdir()) == []
    after = {p: p.stat().st_mtime_ns for p in package_dir.rglob("*") if "__pycache__" not in p.parts}
    assert after == before
    assert not list(REPO.glob("parsetab.py")) and not list(REPO.glob("parser.out"))


# ---------------------------------------------------------------------- real files


def test_libvirt_remote_protocol(remote_protocol_x: Path, libvirt_header: Path) -> None:
    module = load(remote_protocol_x, FrontendOptions(constants_from=(libvirt_header,)))
    (table,) = module.procedure_tables
    assert table.style is ProtocolStyle.LIBVIRT
    assert (table.program, table.version) == (0x20008086, 1)
    assert len(table.procedures) == 443
    assert [p.number for p in table.procedures] == list(range(1, 444))
    streams = {p.number: p for p in table.procedures if p.annotations.stream}
    assert sorted(streams) == [148, 201, 208, 209, 211, 215, 296]
    assert streams[209].annotations.readstream == 1
    assert streams[209].annotations.sparseflag == "VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM"
    assert streams[208].annotations.writestream == 1
    by_name = {p.name: p for p in table.procedures}
    open_proc = by_name["CONNECT_OPEN"]
    assert open_proc.annotations.generate == "none"
    assert open_proc.annotations.priority == "high"
    assert [(a.object, a.permission) for a in open_proc.annotations.acl] == [("connect", "getattr")]
    assert [(a.kind, a.type.name) for a in open_proc.args] == [  # type: ignore[union-attr]
        (DeclKind.PLAIN, "remote_connect_open_args")
    ]
    result = by_name["CONNECT_GET_VERSION"].result
    assert result is not None and result.kind is DeclKind.PLAIN
    assert result.type.name == "remote_connect_get_version_ret"  # type: ignore[union-attr]
    lifecycle = by_name["DOMAIN_EVENT_LIFECYCLE"]
    assert lifecycle.event is not None and lifecycle.event.name == "remote_domain_event_lifecycle_msg"  # type: ignore[union-attr]
    assert module.external_constants["VIR_UUID_BUFLEN"] == 16
    assert module.external_constants["VIR_TYPED_PARAM_STRING"] == 7
    value = module.types["remote_typed_param_value"]
    assert isinstance(value, UnionDef)
    assert [arm.labels[0].value for arm in value.arms] == [1, 2, 3, 4, 5, 6, 7]
    get_info = module.types["remote_node_get_info_ret"]
    assert isinstance(get_info, StructDef) and get_info.annotations.insert == 1
    assert not module.warnings


def test_libvirt_needs_its_header_constants(remote_protocol_x: Path) -> None:
    with pytest.raises(XdrgenError) as info:
        load(remote_protocol_x)
    text = info.value.render()
    assert "undefined constant 'VIR_SECURITY_MODEL_BUFLEN'" in text
    assert "--constants-from" in text


def test_libvirt_rpc_files(
    virnet_protocol_x: Path, keepalive_protocol_x: Path, libvirt_header: Path
) -> None:
    virnet = load(virnet_protocol_x, FrontendOptions(constants_from=(libvirt_header,)))
    assert virnet.constants["VIR_NET_MESSAGE_MAX"].value == 33554432
    assert "virNetMessageError" in virnet.types
    keepalive = load(keepalive_protocol_x)
    (table,) = keepalive.procedure_tables
    assert (table.program, [p.name for p in table.procedures]) == (0x6B656570, ["PING", "PONG"])
    assert all(not p.args and p.result is None for p in table.procedures)


def test_guestfs_protocol(guestfs_protocol_x: Path) -> None:
    module = load(guestfs_protocol_x)
    (table,) = module.procedure_tables
    assert table.style is ProtocolStyle.GUESTFS
    assert (table.program, table.version) == (0x2000F5F5, 4)
    assert max(p.number for p in table.procedures) == 510
    assert all(p.event is None for p in table.procedures)
    header = module.types["guestfs_message_header"]
    assert isinstance(header, StructDef)
    assert isinstance(header.fields[5].type, PrimitiveType)
    assert header.fields[5].type.primitive is Primitive.UHYPER  # uint64_t progress_hint


def test_check_cli_on_all_shared_files(remote_protocol_x: Path, guestfs_protocol_x: Path, libvirt_header: Path) -> None:
    files = sorted(remote_protocol_x.parent.glob("*.x")) + [guestfs_protocol_x]
    result = subprocess.run(
        [sys.executable, "-m", "xdrgen.cli", "check", *map(str, files), "--constants-from", str(libvirt_header)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(files)
    remote = next(line for line in lines if "remote_protocol.x" in line)
    assert "443 procedures, highest 443, 7 with streams" in remote
    guestfs = next(line for line in lines if "guestfs_protocol.x" in line)
    assert "0x2000F5F5 version 4" in guestfs and "highest 510" in guestfs


def test_cli_error_exit_status_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.x"
    bad.write_text("struct s { int x }\n")
    result = subprocess.run(
        [sys.executable, "-m", "xdrgen.cli", "check", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:1:17: error: expected ';' after struct member 'x'" in result.stderr


def test_version_flag() -> None:
    from xdrgen import __version__

    result = subprocess.run([sys.executable, "-m", "xdrgen.cli", "--version"], capture_output=True, text=True)
    assert result.stdout.strip() == f"xdrgen {__version__}"


def test_passthrough_defines_supply_constants_the_c_side_would_see() -> None:
    source = "%#define NAME_MAX 255\n%#define PATH_MAX (NAME_MAX + 1) * 4\nstruct s { string path<PATH_MAX>; };\n"
    module = _load_text(source)
    s = module.types["s"]
    assert isinstance(s, StructDef) and s.fields[0].size == 1024


def test_string_constants_and_rpcgen_builtin_types() -> None:
    from xdrgen.model import StringConstantDef

    module = _load_text('const HEX = "d4a0";\nstruct k { netobj key; des_block block; };\n')
    (text,) = [d for d in module.definitions if isinstance(d, StringConstantDef)]
    assert (text.name, text.value) == ("HEX", "d4a0")
    netobj = module.types["netobj"]
    assert isinstance(netobj, TypedefDef)
    assert (netobj.declaration.kind, netobj.declaration.size) == (DeclKind.VAR_OPAQUE, 1024)
    des = module.types["des_block"]
    assert isinstance(des, TypedefDef)
    assert (des.declaration.kind, des.declaration.size) == (DeclKind.FIXED_OPAQUE, 8)


def test_cli_reports_filesystem_errors_without_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "xdrgen.cli", "generate", str(DEMO), "-o", str(blocker / "out")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    directory = subprocess.run(
        [sys.executable, "-m", "xdrgen.cli", "check", str(tmp_path)], capture_output=True, text=True
    )
    assert directory.returncode == 2
    assert directory.stderr.strip() == f"error: {tmp_path}: is a directory, not a .x file"
