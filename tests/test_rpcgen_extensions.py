"""The rpcgen extensions of issue 10, part 2, on small files of tests/xfiles:

- '%' lines anywhere (passthrough_anywhere.x);
- '%#define' constants in rpcgen's other views (rpc_views.x);
- string, string<n>, named and optional procedure parameters (proc_params.x);
- zero-length arrays (zero_length.x);
- the names <rpc/rpc.h> gives every rpcgen-compiled file (rpc_h_constants.x).

Each file gets ``xdrgen check``, ``xdrgen generate``, value round trips (here) and
the differential tests against rpcgen's C (test_differential_rpcgen.py, ids
``xfiles/<name>.x``); procedure parameters, which are no types of their own, get
their differential test here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from reference.harness import (
    ProtocolUnderTest,
    require_reference,
    session_protocol,
)
from engine_backends import both_backends
from reference.rpcgen_ref import build_reference
import test_differential_rpcgen as differential
from test_corpus import mypy_strict_errors
from test_generate_roundtrip import run_all_types
from xdrgen.diagnostics import XdrgenError
from xdrgen.frontend import FrontendOptions, load
from xdrgen.model import (
    UNBOUNDED,
    Declaration,
    DeclKind,
    Definition,
    NamedType,
    Passthrough,
    PrimitiveType,
    ProgramDef,
    StructDef,
    TypedefDef,
    UnionDef,
    XdrModule,
)
from xdrgen.runtime.engine import backend
from xdrgen.runtime.errors import XdrDecodeError, XdrEncodeError, XdrTrailingDataError

TESTS = Path(__file__).resolve().parent
XFILES = [TESTS / name for name in differential.EXTENSION_FILES]


def xfile(name: str) -> Path:
    return TESTS / "xfiles" / name


def load_text(tmp_path: Path, text: str, name: str = "t.x", **options: Any) -> XdrModule:
    path = tmp_path / name
    path.write_text(text)
    return load(path, FrontendOptions(**options))


def generated(name: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The module generated from tests/xfiles/<name> (shared with the differential tests)."""
    require_reference()
    return session_protocol(f"xfiles/{name}", tmp_path_factory).generated


# -- every file: check, generate, values round trip ---------------------------------


def xdrgen_cli(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xdrgen.cli", *args], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert " error: " not in result.stderr


@pytest.mark.parametrize("path", XFILES, ids=lambda p: p.name)
def test_check_and_generate(path: Path, tmp_path: Path) -> None:
    xdrgen_cli("check", str(path))
    xdrgen_cli("generate", str(path), "-o", str(tmp_path))
    assert (tmp_path / f"{path.stem}.py").is_file()


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """One mypy --strict run over the modules of every file."""
    out = tmp_path_factory.mktemp("xfiles")
    for path in XFILES:
        xdrgen_cli("generate", str(path), "-o", str(out))
    return mypy_strict_errors([out / f"{p.stem}.py" for p in XFILES], out / ".mypy_cache")


@pytest.mark.parametrize("path", XFILES, ids=lambda p: p.name)
def test_generated_module_passes_mypy_strict(
    path: Path, mypy_errors: dict[str, list[str]]
) -> None:
    assert mypy_errors.get(f"{path.stem}.py", []) == []


@pytest.mark.parametrize("path", XFILES, ids=lambda p: p.name)
def test_values_round_trip(path: Path) -> None:
    run_all_types(path, 30)


# -- '%' lines ------------------------------------------------------------------------


def test_passthrough_lines_anywhere_go_before_their_definition() -> None:
    model = load(xfile("passthrough_anywhere.x"), FrontendOptions())
    shape = [
        d.text.strip("/* ") if isinstance(d, Passthrough) else type(d).__name__
        for d in model.definitions
    ]
    assert shape == [
        "at the top",
        "in a struct",
        "inside a declaration",
        "StructDef",
        "in an enum",
        "EnumDef",
        "in a union",
        "UnionDef",
        "in a typedef",
        "TypedefDef",
        "in a program",
        "in a version",
        "ProgramDef",
        "at the end",
    ]
    lines = [d.pos.line for d in model.definitions if isinstance(d, Passthrough)]
    assert lines == [5, 7, 10, 16, 22, 29, 33, 35, 39]


def test_passthrough_order_is_rpcgens() -> None:
    """rpcgen prints each '%' line before the definition it is in: compare its header."""
    require_reference()
    source = xfile("passthrough_anywhere.x")
    header = subprocess.run(
        ["rpcgen", "-h", str(source)], capture_output=True, text=True, check=True
    ).stdout
    model = load(source, FrontendOptions())
    ours = [d.text for d in model.definitions if isinstance(d, Passthrough)]
    marked = {text: f"@{index}" for index, text in enumerate(ours)}
    # Where each definition starts in rpcgen's header, next to the '%' lines.
    starts = {
        "StructDef": "struct pa_point {",
        "EnumDef": "enum pa_color {",
        "UnionDef": "struct pa_shape {",
        "TypedefDef": "typedef struct {",
        "ProgramDef": "#define PA_PROG 0x20000101",
    }
    theirs = [
        marked.get(line, line)
        for line in header.splitlines()
        if line in marked or line in starts.values()
    ]
    # rpcgen's header has the programs' #defines after everything else.
    definitions: list[Definition] = [d for d in model.definitions if not isinstance(d, ProgramDef)]
    definitions += [d for d in model.definitions if isinstance(d, ProgramDef)]
    expected = [
        marked[d.text] if isinstance(d, Passthrough) else starts[type(d).__name__]
        for d in definitions
    ]
    assert theirs == expected


def test_passthrough_lines_do_not_change_the_wire(tmp_path_factory: pytest.TempPathFactory) -> None:
    module = generated("passthrough_anywhere.x", tmp_path_factory)
    point = module.pa_point(x=1, y=-2)
    assert module.XDR_TYPES["pa_point"].encode(point) == bytes.fromhex("00000001fffffffe")


# -- rpcgen's views -------------------------------------------------------------------


def test_rpc_hdr_defines_are_constants_of_the_module(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    model = load(xfile("rpc_views.x"), FrontendOptions())
    sizes = {f.name: f.size for f in model.types["rv_entry"].fields}  # type: ignore[union-attr]
    assert sizes == {"name": 32, "path": 129, "tag": 3}
    defines = {n: c.value for n, c in model.constants.items() if c.c_define}
    assert defines == {"RV_NAME_MAX": 32, "RV_PATH_MAX": 129, "RV_TAG_SIZE": 3}
    views = {d.text: d.other_views for d in model.definitions if isinstance(d, Passthrough)}
    assert views["#define RV_NAME_MAX 32"] == ("RPC_HDR",)
    assert views["/* in every C file but the header */"] == ()
    assert views["#define RV_TAG_SIZE 3"] == ()
    module = generated("rpc_views.x", tmp_path_factory)
    assert (module.RV_NAME_MAX, module.RV_PATH_MAX, module.RV_TAG_SIZE) == (32, 129, 3)


def test_every_rpcgen_view_supplies_its_defines(tmp_path: Path) -> None:
    text = (
        "#ifdef RPC_SVC\n%#define A 1\n#endif\n"
        "#if defined(RPC_CLNT) && !defined(RPC_HDR)\n%#define B (A + 1)\n#endif\n"
        "#ifdef RPC_TBL\n%#define C 3\n#endif\n"
        "#if 0\n%#define NEVER 9\n#endif\n"
        "#ifdef RPC_HDR\nstruct header_only { int x; };\n#endif\n"
        "struct s { opaque a[A]; opaque b[B]; opaque c[C]; };\n"
    )
    model = load_text(tmp_path, text)
    s = model.types["s"]
    assert isinstance(s, StructDef) and [f.size for f in s.fields] == [1, 2, 3]
    assert "header_only" not in model.types  # declarations are read in RPC_XDR only
    assert "NEVER" not in model.constants
    tags = {d.text: d.other_views for d in model.definitions if isinstance(d, Passthrough)}
    assert tags == {"#define A 1": ("RPC_SVC",), "#define B (A + 1)": ("RPC_CLNT",), "#define C 3": ("RPC_TBL",)}


def test_the_xdr_view_wins_and_a_conflict_is_reported(tmp_path: Path) -> None:
    text = "#ifdef RPC_HDR\n%#define N 4\n#else\n%#define N 5\n#endif\ntypedef opaque o[N];\n"
    model = load_text(tmp_path, text)
    assert model.constants["N"].value == 5
    (warning,) = model.warnings
    assert warning.pos is not None and warning.pos.line == 2
    assert "defined again with a different value" in warning.message
    assert "xdrgen uses '5'" in warning.message


def test_c_define_macros_expand_as_c_does(tmp_path: Path) -> None:
    # Textual expansion: B is 1+1, so B*2 is 3 in C (not 4).
    text = "%#define B 1+1\n%#define C B*2\nconst USED = C;\n"
    assert load_text(tmp_path, text).constants["USED"].value == 3


def test_c_defines_that_are_no_integer_are_c_only(tmp_path: Path) -> None:
    text = (
        '%#define PATH "/var/run/x.sock"\n'
        "%#define opaque char\n"
        "%#define WORLD(a, m) (((a) & (m)) != 0)\n"
        "%#define SIZE 8\n"
        "struct s { opaque x[SIZE]; };\n"
    )
    model = load_text(tmp_path, text)
    assert {n for n, c in model.constants.items() if c.c_define} == {"SIZE"}


def test_a_c_define_used_as_a_size_must_be_an_integer(tmp_path: Path) -> None:
    path = tmp_path / "t.x"
    path.write_text('%#define NAME "x"\nstruct s { opaque x[NAME]; };\n')
    with pytest.raises(XdrgenError) as caught:
        load(path, FrontendOptions())
    text = str(caught.value)
    assert text.startswith(f"{path}:2:21: error: the length of 'x': 'NAME' is defined by")
    assert f"at {path}:1:1, which is not an integer constant expression" in text
    assert "^" in text


def test_a_files_own_definition_wins_over_a_c_define(tmp_path: Path) -> None:
    same = load_text(tmp_path, "const N = 3;\n%#define N 3\n")
    assert same.warnings == [] and not same.constants["N"].c_define
    other = load_text(tmp_path, "const N = 3;\n%#define N 4\n", name="u.x")
    assert other.constants["N"].value == 3
    assert ["is ignored: the .x defines 'N' itself (= 3)" in w.message for w in other.warnings] == [True]


def test_system_cpp_reads_the_rpc_xdr_view_only(tmp_path: Path) -> None:
    if subprocess.run(["which", "cpp"], capture_output=True).returncode != 0:
        pytest.skip("the system C preprocessor 'cpp' is not installed")
    path = tmp_path / "t.x"
    path.write_text("#ifdef RPC_HDR\n%#define N 4\n#endif\ntypedef opaque o[N];\n")
    assert load(path, FrontendOptions()).constants["N"].value == 4
    with pytest.raises(XdrgenError, match="undefined constant 'N'"):
        load(path, FrontendOptions(system_cpp=True))


# -- procedure parameters -------------------------------------------------------------


def _params(model: XdrModule, proc: str) -> tuple[list[tuple[str | None, DeclKind, object, int | None]], object]:
    program = model.programs[0]
    (found,) = [p for v in program.versions for p in v.procedures if p.name == proc]

    def shape(d: Declaration) -> tuple[str | None, DeclKind, object, int | None]:
        ref = d.type.name if isinstance(d.type, NamedType) else (
            d.type.primitive.value if isinstance(d.type, PrimitiveType) else None
        )
        return (d.name, d.kind, ref, d.size)

    return [shape(a) for a in found.args], (shape(found.result) if found.result else None)


def test_procedure_parameters_in_the_model() -> None:
    model = load(xfile("proc_params.x"), FrontendOptions())
    assert _params(model, "PP_ECHO") == (
        [(None, DeclKind.STRING, None, UNBOUNDED)],
        (None, DeclKind.STRING, None, UNBOUNDED),
    )
    assert _params(model, "PP_RENAME") == (
        [("item", DeclKind.PLAIN, "pp_item", None), ("name", DeclKind.STRING, None, 16)],
        None,
    )
    assert _params(model, "PP_STORE") == (
        [
            ("label", DeclKind.STRING, None, UNBOUNDED),
            ("item", DeclKind.OPTIONAL, "pp_item", None),
            ("count", DeclKind.PLAIN, "unsigned int", None),
        ],
        (None, DeclKind.PLAIN, "int", None),
    )
    assert _params(model, "PP_FIND") == ([(None, DeclKind.PLAIN, "pp_name", None)], (None, DeclKind.PLAIN, "pp_item", None))
    assert _params(model, "PP_PING") == ([], None)
    # The procedure tables carry the same parameters.
    (table,) = model.procedure_tables
    echo = next(p for p in table.procedures if p.name == "PP_ECHO")
    assert echo.args[0].kind is DeclKind.STRING and echo.result is not None


def test_a_lone_argument_is_sent_as_rpcgen_sends_it(tmp_path: Path) -> None:
    model = load_text(
        tmp_path,
        "struct i { int x; };\nprogram P { version V {\n"
        "  void A(string name<8>) = 1;\n  void B(i *it) = 2;\n} = 1; } = 9;\n",
    )
    assert _params(model, "A")[0] == [("name", DeclKind.STRING, None, UNBOUNDED)]
    assert _params(model, "B")[0] == [("it", DeclKind.PLAIN, "i", None)]
    assert [w.pos.line for w in model.warnings if w.pos] == [3, 4]


def test_procedure_parameter_codecs(tmp_path_factory: pytest.TempPathFactory) -> None:
    module = generated("proc_params.x", tmp_path_factory)
    table = module.PROCEDURE_TABLES["PP_PROG"]
    echo = table.by_name["PP_ECHO"]
    assert echo.args[0] is echo.result  # one codec per parameter shape
    assert echo.result.encode("héllo") == bytes.fromhex("00000006") + "héllo".encode() + b"\0\0"
    rename = table.by_name["PP_RENAME"]
    assert rename.args[1].name == "string<16>"
    with pytest.raises(XdrEncodeError):
        rename.args[1].encode("x" * 17)
    store = table.by_name["PP_STORE"]
    assert store.args[1].name == "pp_item *"
    assert store.args[1].encode(None) == bytes(4)
    item = module.pp_item(id=7, label="ab")
    assert store.args[1].decode(store.args[1].encode(item)) == item
    assert table.by_name["PP_FIND"].args[0] is module.XDR_TYPES["pp_name"]
    assert table.by_name["PP_PING"].args == () and table.by_name["PP_PING"].result is None


class _Arguments:
    """Several procedure arguments as one codec: each after the other on the wire."""

    def __init__(self, codecs: tuple[Any, ...]) -> None:
        self.codecs = codecs

    def decode(self, data: Any) -> list[Any]:
        values, offset = [], 0
        for codec in self.codecs:
            value, offset = codec.decode_from(data, offset)
            values.append(value)
        if offset != len(data):
            raise XdrTrailingDataError("trailing bytes", offset=offset)
        return values

    def encode(self, values: list[Any]) -> bytes:
        buffer = bytearray()
        for codec, value in zip(self.codecs, values):
            codec.encode_into(buffer, value)
        return bytes(buffer)

    def both_backends(self) -> list[Any]:
        """These codecs on the compiled engine and on pure Python (tests/engine_backends.py)."""
        pure = _Arguments(tuple(both_backends(c)[-1] for c in self.codecs))
        return [self, pure] if any(backend(c) == "engine" for c in self.codecs) else [self]


@pytest.fixture(scope="module")
def parameters(tmp_path_factory: pytest.TempPathFactory) -> ProtocolUnderTest:
    """proc_params.x's parameters against rpcgen -N's C: a lone string against
    libtirpc's xdr_wrapstring, several arguments against rpcgen's
    <proc>_1_argument structs (the model gets those two shapes as types)."""
    require_reference()
    x_file = xfile("proc_params.x")
    module = session_protocol("xfiles/proc_params.x", tmp_path_factory).generated
    model = load(x_file, FrontendOptions())
    table = module.PROCEDURE_TABLES["PP_PROG"]
    codecs: dict[str, Any] = {"wrapstring": table.by_name["PP_ECHO"].result}
    pos = model.programs[0].pos
    model.types["wrapstring"] = TypedefDef(
        "wrapstring", Declaration("s", DeclKind.STRING, None, UNBOUNDED, pos), pos
    )
    for proc in model.programs[0].versions[0].procedures:
        if len(proc.args) > 1:
            name = f"{proc.name.lower()}_1_argument"
            fields = [
                Declaration(a.name or f"arg{i + 1}", a.kind, a.type, a.size, a.pos)
                for i, a in enumerate(proc.args)
            ]
            model.types[name] = StructDef(name, fields, proc.pos)
            codecs[name] = _Arguments(table.by_name[proc.name].args)
    reference = build_reference(x_file, rpcgen_flags=["-N"], library_types=["wrapstring"])
    assert set(codecs) <= set(reference.type_names)
    return ProtocolUnderTest(
        "proc_params-parameters",
        x_file,
        model,
        SimpleNamespace(XDR_TYPES=codecs),  # type: ignore[arg-type]
        reference,
        list(codecs),
    )


def test_parameters_valid_encodings_roundtrip_identically(parameters: ProtocolUnderTest) -> None:
    assert parameters.type_names == ["wrapstring", "pp_rename_1_argument", "pp_store_1_argument"]
    differential.test_valid_encodings_roundtrip_identically(parameters)


def test_parameters_damaged_encodings_accepted_and_rejected_alike(
    parameters: ProtocolUnderTest,
) -> None:
    differential.test_damaged_encodings_accepted_and_rejected_alike(parameters)


# -- zero lengths -----------------------------------------------------------------------


def test_zero_lengths_in_the_model() -> None:
    model = load(xfile("zero_length.x"), FrontendOptions())
    record = model.types["zl_record"]
    assert isinstance(record, StructDef)
    assert [(f.kind, f.size) for f in record.fields[1:7]] == [
        (DeclKind.FIXED_OPAQUE, 0),
        (DeclKind.FIXED_ARRAY, 0),
        (DeclKind.FIXED_ARRAY, 0),
        (DeclKind.VAR_OPAQUE, 0),
        (DeclKind.VAR_ARRAY, 0),
        (DeclKind.STRING, 0),
    ]


def test_zero_lengths_on_the_wire(tmp_path_factory: pytest.TempPathFactory) -> None:
    module = generated("zero_length.x", tmp_path_factory)
    codec = module.XDR_TYPES["zl_record"]
    value = module.zl_record(
        before=1, results=b"", counts=[], points=[], empty=b"", none=[], blank="", after=2
    )
    # [0] takes no bytes, <0> only its zero length word.
    assert codec.encode(value) == bytes.fromhex("00000001" + "00000000" * 3 + "00000002")
    assert codec.decode(codec.encode(value)) == value
    assert module.XDR_TYPES["zl_only"].encode(module.zl_only(nothing=b"")) == b""
    assert module.XDR_TYPES["zl_no_points"].encode([]) == b""
    for wrong in (
        dict(results=b"x"),
        dict(counts=[0]),
        dict(empty=b"x"),
        dict(none=[1]),
        dict(blank="x"),
    ):
        fields = {name: getattr(value, name) for name in value.__slots__}
        fields.update(wrong)
        with pytest.raises(XdrEncodeError):
            codec.encode(module.zl_record(**fields))
    with pytest.raises(XdrDecodeError):  # a length word of 1 where at most 0 may be
        codec.decode(bytes.fromhex("00000001" + "00000001" + "00000000" * 3))


def test_negative_lengths_are_still_errors(tmp_path: Path) -> None:
    with pytest.raises(XdrgenError, match=r"t\.x:1:21: error: the maximum length of 'x' is negative: -1"):
        load_text(tmp_path, "struct s { opaque x<-1>; };\n")


# -- names from <rpc/rpc.h> -------------------------------------------------------------


def test_rpc_h_names_in_the_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    model = load(xfile("rpc_h_constants.x"), FrontendOptions())
    assert {n: c.value for n, c in model.builtin_constants.items()} == {
        "AUTH_NONE": 0,
        "AUTH_SYS": 1,
        "AUTH_UNIX": 1,
        "AUTH_DH": 3,
        "AUTH_DES": 3,
        "RPCSEC_GSS": 6,
    }
    cred = model.types["rh_cred"]
    assert isinstance(cred, UnionDef)
    assert [(label.name, label.value) for arm in cred.arms for label in arm.labels] == [
        ("AUTH_NONE", 0),
        ("AUTH_SYS", 1),
        ("AUTH_SHORT", 12),  # the file's own const wins
        ("AUTH_DH", 3),
        ("RPCSEC_GSS", 6),
    ]
    module = generated("rpc_h_constants.x", tmp_path_factory)
    assert (module.AUTH_NONE, module.AUTH_SYS, module.AUTH_SHORT, module.RPCSEC_GSS) == (0, 1, 12, 6)
    assert not hasattr(module, "AUTH_KERB") and not hasattr(module, "AUTH_NULL")  # unused


def test_rpc_h_names_give_way_to_enums_and_imports(tmp_path: Path) -> None:
    own = load_text(tmp_path, "enum f { AUTH_SYS = 9 };\nunion u switch (f d) { case AUTH_SYS: int x; };\n")
    assert own.builtin_constants == {}
    (arm,) = own.types["u"].arms  # type: ignore[union-attr]
    assert arm.labels[0].value == 9
    base = tmp_path / "base.x"
    base.write_text("union b switch (int d) { case AUTH_SYS: int x; };\n")
    top = load_text(
        tmp_path, "const AUTH_SYS = 1;\nstruct t { b inner; };\n", name="top.x", imports=(base,)
    )
    assert "AUTH_SYS" in top.constants and top.warnings == []


def test_rpc_h_values_are_libtirpcs(tmp_path: Path) -> None:
    """The built-in values against what gcc sees in <rpc/rpc.h>."""
    require_reference()
    from xdrgen.frontend.cdefines import RPC_H_CONSTANTS

    program = tmp_path / "values.c"
    program.write_text(
        "#include <rpc/rpc.h>\n#include <stdio.h>\nint main(void) {\n"
        + "".join(f'    printf("{n} %d\\n", (int)({n}));\n' for n in RPC_H_CONSTANTS)
        + "    return 0;\n}\n"
    )
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libtirpc"], capture_output=True, text=True, check=True
    ).stdout.split()
    subprocess.run(["gcc", "-o", str(tmp_path / "values"), str(program), *flags], check=True)
    out = subprocess.run([str(tmp_path / "values")], capture_output=True, text=True, check=True).stdout
    assert dict((n, int(v)) for n, v in (line.split() for line in out.splitlines())) == RPC_H_CONSTANTS


# -- names used before their definition -------------------------------------------------


def test_procedure_names_are_constants_anywhere(tmp_path: Path) -> None:
    model = load_text(
        tmp_path,
        "const HIGHEST = P_LAST;\nconst VERS = P_V;\n"
        "program P { version P_V { void P_LAST(void) = 7; } = 2; } = 0x20000009;\n",
    )
    assert (model.constants["HIGHEST"].value, model.constants["VERS"].value) == (7, 2)


def test_u_char_and_u_short_keep_their_c_range(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    path = tmp_path / "narrow.x"
    path.write_text("struct pair { u_char c[2]; u_short h; };\n")
    result = subprocess.run(
        [sys.executable, "-m", "xdrgen.cli", "generate", str(path), "-o", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    # Loaded from its file: another test may have a module named ``narrow`` loaded.
    import importlib.util

    spec = importlib.util.spec_from_file_location("u_char_range_narrow", tmp_path / "narrow.py")
    assert spec is not None and spec.loader is not None
    narrow = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(narrow)
    codec = narrow.XDR_TYPES["pair"]
    assert codec.encode(narrow.pair(c=[255, 0], h=65535)) == bytes.fromhex("000000ff000000000000ffff")
    with pytest.raises(XdrEncodeError):
        codec.encode(narrow.pair(c=[256, 0], h=0))
    with pytest.raises(XdrEncodeError):
        codec.encode(narrow.pair(c=[0, 0], h=65536))
    with pytest.raises(XdrDecodeError):
        codec.decode(bytes.fromhex("00000100000000000000ffff"))
    with pytest.raises(XdrDecodeError):
        codec.decode(bytes.fromhex("000000ff0000000000010000"))



# -- netbuf: a type of the RPC library that XDR cannot describe ---------------------------


def _netbuf_verdict(data: bytes) -> tuple[bool, int, bool]:
    """libtirpc 1.3.3's xdr_netbuf on ``data``: (accepted, bytes consumed, padding is zero)."""
    if len(data) < 8:
        return False, 0, True
    maxlen, n = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
    end = 8 + ((n + 3) & -4)
    if maxlen > 9000 or n > maxlen or end > len(data):
        return False, 0, True
    return True, end, data[8 + n : end] == bytes(end - 8 - n)


@pytest.fixture(scope="module")
def netbuf_reference() -> Any:
    require_reference()
    reference = build_reference(xfile("rpc_views.x"), library_types=["netbuf"])
    yield reference
    reference.close()


def test_netbuf_against_libtirpc(netbuf_reference: Any) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from xdrgen.runtime.rpclib import XDR_TYPES, netbuf

    codec = XDR_TYPES["netbuf"]

    @st.composite
    def inputs(draw: st.DrawFn) -> bytes:
        maxlen = draw(st.sampled_from([0, 1, 4, 5, 9000, 9001, 0xFFFFFFFF]) | st.integers(0, 64))
        body = draw(st.binary(max_size=min(maxlen, 24) + 2))
        n = draw(st.sampled_from([len(body), maxlen, maxlen + 1, 0xFFFFFFF0]))
        pad = draw(st.sampled_from([b"", b"\0\0\0", b"\1\0\0"]))
        tail = draw(st.sampled_from([b"", b"\0\0\0\0"]))
        data = maxlen.to_bytes(4, "big") + (n & 0xFFFFFFFF).to_bytes(4, "big") + body + pad + tail
        return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data

    seen: set[tuple[bool, bool]] = set()

    @settings(max_examples=300, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(inputs())
    def agree(data: bytes) -> None:
        theirs = netbuf_reference.roundtrip("netbuf", data)
        accepted, consumed, zero_pad = _netbuf_verdict(data)
        seen.add((accepted, zero_pad and consumed == len(data)))
        assert theirs.decoded == accepted, ("verdict vs libtirpc", data.hex())
        if accepted:
            assert theirs.consumed == consumed
        try:
            value = codec.decode(data)
        except XdrDecodeError as error:
            assert error.offset is not None
            assert not (accepted and zero_pad and consumed == len(data)), data.hex()
        else:
            assert accepted and zero_pad and consumed == len(data), data.hex()
            assert codec.encode(value) == data == theirs.reencoded

    agree()
    # Inputs both take as they are, inputs only libtirpc takes, inputs both refuse.
    assert {(True, True), (True, False)} <= seen and any(not a for a, _ in seen)
    assert codec.encode(netbuf(8, b"abc")) == bytes.fromhex("000000080000000361626300")
    for bad in (netbuf(2, b"abc"), netbuf(9001, b""), netbuf(-1, b"")):
        with pytest.raises(XdrEncodeError):
            codec.encode(bad)
