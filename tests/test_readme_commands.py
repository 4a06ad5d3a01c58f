"""The README's commands work on a fresh copy, and its claims about demo.x hold.

- The two commands at the top of README.md run in a fresh copy of the
  repository (tracked and untracked-but-not-ignored files, so uncommitted work
  is tested too) with ../shared beside it, inside a new venv.
- .ci/run runs exactly the README's test command.
- protocols/demo.x compiles with Debian's rpcgen + gcc, covers every construct
  the README says it does, and demo_rfc_extras.x holds what rpcgen rejects.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from xdrgen.frontend import load
from xdrgen.model import (
    DeclKind,
    EnumDef,
    NamedType,
    Passthrough,
    Primitive,
    PrimitiveType,
    ProtocolStyle,
    StructDef,
    TypedefDef,
    TypeRef,
    UnionDef,
    XdrModule,
    resolve_typedefs,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
CI_RUN = REPO_ROOT / ".ci" / "run"
DEMO_X = REPO_ROOT / "protocols" / "demo.x"
EXTRAS_X = REPO_ROOT / "protocols" / "demo_rfc_extras.x"
SHARED = REPO_ROOT.parent / "shared"

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks(language: str) -> list[str]:
    return [
        body for lang, body in _FENCE.findall(README.read_text()) if lang == language
    ]


def readme_commands() -> tuple[str, str]:
    """The install-and-generate command and the test command: the first two sh blocks."""
    first, second = code_blocks("sh")[:2]
    return first.strip(), second.strip()


def tools_required() -> bool:
    """CI installs rpcgen and gcc: there a missing tool is a failure, not a skip."""
    return "1" in (
        os.environ.get("XDRGEN_REQUIRE_SHARED"),
        os.environ.get("XDRGEN_REQUIRE_PEERS"),
    )


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (Debian: rpcsvc-proto, gcc, pkg-config)"
        if tools_required():
            pytest.fail(message)
        pytest.skip(message)


def run(cmd: list[str] | str, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        shell=isinstance(cmd, str),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{cmd} exited {proc.returncode} in {cwd}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


# --------------------------------------------------------------------------
# The README's commands.


def test_readme_opens_with_the_two_commands() -> None:
    install, tests = readme_commands()
    assert "pip install -e '.[test]'" in install
    assert "xdrgen generate protocols/demo.x -o generated/" in install
    assert "pytest" in tests
    # Nothing but the title and one sentence before the first command.
    assert README.read_text().index(install) < 400


def test_ci_runs_exactly_the_readme_test_command() -> None:
    _, tests = readme_commands()
    lines = [line.strip() for line in CI_RUN.read_text().splitlines()]
    runs = [line for line in lines if line == tests or line.startswith(tests + " ||")]
    assert len(runs) == 1, f"{CI_RUN} must run {tests!r} exactly once"
    assert "XDRGEN_REQUIRE_SHARED=1" in CI_RUN.read_text()
    assert os.access(CI_RUN, os.X_OK)


def test_ci_runs_the_readme_type_check() -> None:
    """The README's third command is the type check, and CI runs it once."""
    check = code_blocks("sh")[2].strip()
    assert check == "python3 -m mypy"
    lines = [line.strip() for line in CI_RUN.read_text().splitlines()]
    runs = [line for line in lines if line == check or line.startswith(check + " ||")]
    assert len(runs) == 1, f"{CI_RUN} must run {check!r} exactly once"


def copy_working_tree(dest: Path) -> None:
    """Tracked plus untracked-but-not-ignored files: what a commit of this tree would hold."""
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
    )
    for rel in filter(None, listed.split("\0")):
        source = REPO_ROOT / rel
        if source.is_file():  # deleted but still tracked files are skipped
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def make_venv(path: Path) -> Path:
    """A fresh venv; this interpreter's installed packages are visible after its own.

    A ``.pth`` of plain directories (not ``--system-site-packages``, which breaks
    when the tests themselves run in a venv) keeps pip offline and fast, and does
    not process that environment's ``.pth`` files, so its editable xdrgen stays out.
    """
    venv.create(path, with_pip=False)
    python = path / "bin" / "python"
    purelib = run(
        [
            str(python),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        cwd=path,
    ).strip()
    site_dirs = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (Path(purelib) / "outer_environment.pth").write_text("\n".join(site_dirs) + "\n")
    return path / "bin"


def test_readme_commands_on_a_fresh_copy(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot list the repository's files")
    install, tests = readme_commands()
    clone = tmp_path / "xdrgen"
    copy_working_tree(clone)
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED)
    # The first command must produce the module itself, not find the committed one.
    for stale in (clone / "generated").glob("demo*.py"):
        stale.unlink()
    bindir = make_venv(tmp_path / "venv")
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(bindir.parent)

    run(install, cwd=clone, env=env)
    assert (clone / "generated" / "demo.py").is_file()
    # The editable install points at the copy, not at this checkout.
    where = run(
        ["python3", "-c", "import xdrgen; print(xdrgen.__file__)"],
        cwd=tmp_path,
        env=env,
    )
    assert Path(where.strip()).is_relative_to(clone), where

    # The README's Python example, run where the README says: the repository root.
    (example,) = code_blocks("python")[:1]
    run(["python3", "-c", example], cwd=clone, env=env)

    # The test command itself runs in CI (.ci/run); here, check that it finds and
    # imports every test of the copy (running them all again would double CI time).
    env["PYTEST_ADDOPTS"] = "--collect-only"
    out = run(tests, cwd=clone, env=env)
    collected = re.search(r"(\d+) tests? collected", out)
    assert collected is not None and int(collected.group(1)) > 0, out


# --------------------------------------------------------------------------
# protocols/demo.x against rpcgen.


def rpcgen_and_compile(x_file: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """rpcgen -N (header, XDR, client, server) then gcc on all of it; the last failure wins."""
    shutil.copy(x_file, workdir / x_file.name)
    stem = x_file.stem
    cflags = run(["pkg-config", "--cflags", "libtirpc"], cwd=workdir).split()
    steps = [
        ["rpcgen", "-N", "-h", "-o", f"{stem}.h", f"{stem}.x"],
        ["rpcgen", "-N", "-c", "-o", f"{stem}_xdr.c", f"{stem}.x"],
        ["rpcgen", "-N", "-l", "-o", f"{stem}_clnt.c", f"{stem}.x"],
        ["rpcgen", "-N", "-m", "-o", f"{stem}_svc.c", f"{stem}.x"],
        ["gcc", "-c", *cflags, f"{stem}_xdr.c", f"{stem}_clnt.c", f"{stem}_svc.c"],
    ]
    for step in steps:
        proc = subprocess.run(
            step, cwd=workdir, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            return proc
    return proc


def test_demo_compiles_with_rpcgen_and_gcc(tmp_path: Path) -> None:
    require_tools("rpcgen", "gcc", "pkg-config")
    proc = rpcgen_and_compile(DEMO_X, tmp_path)
    assert proc.returncode == 0, f"{proc.args}\n{proc.stdout}\n{proc.stderr}"
    header = (tmp_path / "demo.h").read_text()
    # The pass-through line reached rpcgen's output.
    assert "C pass-through: rpcgen copies this line" in header


def test_demo_rfc_extras_is_rejected_by_rpcgen(tmp_path: Path) -> None:
    """The reason the extras file exists: keep its header comment honest."""
    require_tools("rpcgen", "gcc", "pkg-config")
    proc = rpcgen_and_compile(EXTRAS_X, tmp_path)
    assert proc.returncode != 0


# --------------------------------------------------------------------------
# protocols/demo.x covers what the README and issue 2 say it does.


@pytest.fixture(scope="module")
def demo() -> XdrModule:
    return load(DEMO_X)


@pytest.fixture(scope="module")
def extras() -> XdrModule:
    return load(EXTRAS_X)


def primitives_used(module: XdrModule) -> set[Primitive]:
    found: set[Primitive] = set()

    def visit(ref: TypeRef | None) -> None:
        if isinstance(ref, PrimitiveType):
            found.add(ref.primitive)

    for definition in module.types.values():
        if isinstance(definition, StructDef):
            for decl in definition.fields:
                visit(decl.type)
        elif isinstance(definition, UnionDef):
            visit(definition.discriminant.type)
            for arm in definition.arms:
                visit(arm.declaration.type)
        elif isinstance(definition, TypedefDef):
            visit(definition.declaration.type)
    return found


def test_demo_uses_every_xdr_type(demo: XdrModule, extras: XdrModule) -> None:
    assert primitives_used(demo) == set(Primitive) - {Primitive.QUADRUPLE}
    assert Primitive.QUADRUPLE in primitives_used(extras)
    declared = {
        d.kind
        for s in demo.types.values()
        if isinstance(s, StructDef)
        for d in s.fields
    }
    assert declared >= set(DeclKind) - {DeclKind.VOID}
    typedef_kinds = {
        t.declaration.kind for t in demo.types.values() if isinstance(t, TypedefDef)
    }
    assert typedef_kinds == set(DeclKind) - {DeclKind.VOID}
    decls = [
        d for s in demo.types.values() if isinstance(s, StructDef) for d in s.fields
    ]
    decls += [t.declaration for t in demo.types.values() if isinstance(t, TypedefDef)]
    for kind in (DeclKind.STRING, DeclKind.VAR_OPAQUE, DeclKind.VAR_ARRAY):
        assert {d.bounded for d in decls if d.kind is kind} == {True, False}, kind


def test_demo_constants_and_enums(demo: XdrModule) -> None:
    texts = [c.text for c in demo.constants.values()]
    texts += [
        m.text for e in demo.types.values() if isinstance(e, EnumDef) for m in e.members
    ]
    assert any(t.lower().startswith("0x") for t in texts)
    assert any(re.fullmatch(r"0[0-7]+", t) for t in texts)
    assert any(t.startswith("-") for t in texts)
    assert any(t.isidentifier() for t in (c.text for c in demo.constants.values()))
    members = [
        m for e in demo.types.values() if isinstance(e, EnumDef) for m in e.members
    ]
    assert any(m.text in demo.constants for m in members)
    assert any(m.value < 0 for m in members)
    assert any(c.value > 2**31 for c in demo.constants.values())


def test_demo_unions(demo: XdrModule) -> None:
    unions = [u for u in demo.types.values() if isinstance(u, UnionDef)]
    kinds = set()
    for union in unions:
        ref = (
            resolve_typedefs(union.discriminant.type)
            if union.discriminant.type
            else None
        )
        if isinstance(ref, PrimitiveType):
            kinds.add(ref.primitive.value)
        elif isinstance(ref, NamedType) and isinstance(ref.definition, EnumDef):
            kinds.add("enum")
    assert kinds == {"enum", "int", "unsigned int", "bool"}
    arms = [arm for u in unions for arm in u.arms]
    assert any(len(arm.labels) > 1 for arm in arms)
    assert any(arm.declaration.kind is DeclKind.VOID for arm in arms)
    assert any(
        u.default is not None and u.default.kind is not DeclKind.VOID for u in unions
    )
    assert any(
        u.default is not None and u.default.kind is DeclKind.VOID for u in unions
    )
    assert any(u.default is None for u in unions)


def test_demo_linked_list_through_optional_data(demo: XdrModule) -> None:
    def self_referencing(struct: StructDef) -> bool:
        return any(
            d.kind is DeclKind.OPTIONAL
            and isinstance(d.type, NamedType)
            and d.type.definition is struct
            for d in struct.fields
        )

    assert any(
        self_referencing(s) for s in demo.types.values() if isinstance(s, StructDef)
    )


def test_demo_nested_definitions_are_in_extras(extras: XdrModule) -> None:
    nested = {type(d) for d in extras.types.values() if getattr(d, "nested_in", None)}
    assert nested == {StructDef, UnionDef, EnumDef}


def test_demo_program_and_procedure_enum(demo: XdrModule) -> None:
    oncrpc = [t for t in demo.procedure_tables if t.style is ProtocolStyle.ONCRPC]
    assert len({t.version for t in oncrpc}) == 2
    procedures = [p for t in oncrpc for p in t.procedures]
    assert any(len(p.args) >= 2 for p in procedures)
    assert any(not p.args and p.result is None for p in procedures)
    (libvirt,) = [t for t in demo.procedure_tables if t.style is ProtocolStyle.LIBVIRT]
    assert (libvirt.program_constant, libvirt.version_constant) == (
        "DEMO_PROGRAM",
        "DEMO_PROTOCOL_VERSION",
    )
    notes = [p.annotations for p in libvirt.procedures]
    assert {n.stream for n in notes} == {None, "read", "write"}
    assert {n.generate for n in notes} == {"both", "server", "client", "none"}
    assert any(n.priority for n in notes) and any(n.aclfilter for n in notes)
    assert any(n.sparseflag for n in notes) and any(
        a.flag for n in notes for a in n.acl
    )
    assert any(p.event is not None for p in libvirt.procedures)
    fields = [
        d for s in demo.types.values() if isinstance(s, StructDef) for d in s.fields
    ]
    assert any(d.annotations.insert for d in fields)
    assert any(d.annotations.call_by_reference for d in fields)


def test_demo_doc_comments_and_passthrough(demo: XdrModule) -> None:
    assert demo.warnings == []
    assert demo.types["demo_item"].doc
    assert demo.constants["DEMO_NAME_MAX"].doc
    kind = demo.types["demo_kind"]
    assert isinstance(kind, EnumDef) and kind.members[0].doc
    item = demo.types["demo_item"]
    assert isinstance(item, StructDef) and any(d.doc for d in item.fields)
    assert any(isinstance(d, Passthrough) for d in demo.definitions)
