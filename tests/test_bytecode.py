"""The ``.pyc`` xdrgen writes (``generate --pyc``, ``pyc = true``, ``build --pyc``):
checked-hash bytecode in ``__pycache__`` that a read-only copy imports without
compiling or writing anything, recorded in the build manifest so that
``xdrgen build --check`` sees it go missing or stale."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from xdrgen.build import build_project, check_project, load_config
from xdrgen.build.manifest import MANIFEST_NAME
from xdrgen.cli import main
from xdrgen.generator.bytecode import cache_tag, pyc_matches, pyc_path, write_pyc

DEMO_X = REPO_ROOT / "protocols" / "demo.x"

#: Imports ``demo`` with compiling it from source and writing files made to fail.
#: Only the generated module is watched: whether the runtime's own bytecode is
#: cached depends on the install (PYTHONDONTWRITEBYTECODE), not on xdrgen.
READ_ONLY_IMPORT = """\
import importlib._bootstrap_external as bootstrap, sys

compile_source = bootstrap.SourceLoader.source_to_code

def refuse_compile(self, data, path, *args, **kwargs):
    if str(path).endswith("demo.py"):
        raise AssertionError("compiled from source")
    return compile_source(self, data, path, *args, **kwargs)

def refuse_write(self, path, *args, **kwargs):
    raise AssertionError(f"wrote {path}")

bootstrap.SourceLoader.source_to_code = refuse_compile
bootstrap.SourceFileLoader.set_data = refuse_write
import demo
assert demo.XDR_TYPES["demo_kind"].encode(demo.demo_kind.DEMO_KIND_ASSEMBLY) == bytes([0, 0, 0, 0x10])
print(demo.__spec__.cached)
"""


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str]:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def import_in_fresh_python(directory: Path, code: str = READ_ONLY_IMPORT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(directory)])
    return subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=60)


def snapshot(directory: Path) -> dict[str, tuple[int, str]]:
    """Every file below ``directory``: (mtime, sha256)."""
    return {
        p.relative_to(directory).as_posix(): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def make_read_only(directory: Path) -> None:
    for path in [directory, *directory.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(directory: Path) -> None:
    for path in [directory, *directory.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_generate_pyc_writes_checked_hash_bytecode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = cli(capsys, "generate", DEMO_X, "-o", tmp_path, "--pyc", "--no-cache")
    pyc = tmp_path / "__pycache__" / f"demo.{cache_tag()}.pyc"
    assert status == 0 and f"{pyc}: written" in out
    assert pyc == pyc_path(tmp_path / "demo.py")
    header = pyc.read_bytes()[:16]
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[4:8], "little") == 0b11  # PEP 552: hash-based, checked
    assert header[8:16] == importlib.util.source_hash((tmp_path / "demo.py").read_bytes())
    assert pyc_matches(tmp_path / "demo.py")
    # Nothing left behind by the atomic write.
    assert sorted(p.name for p in pyc.parent.iterdir()) == [pyc.name]

    before = pyc.stat().st_mtime_ns
    status, out = cli(capsys, "generate", DEMO_X, "-o", tmp_path, "--pyc")
    assert status == 0 and f"{pyc}: up to date" in out
    assert pyc.stat().st_mtime_ns == before


def test_read_only_copy_imports_the_pyc_without_compiling_or_writing(tmp_path: Path) -> None:
    generated = tmp_path / "gen"
    generated.mkdir()
    assert main(["generate", str(DEMO_X), "-o", str(generated), "--pyc", "-q"]) == 0
    # A copy (new mtimes, as an installer or a container layer makes) stays valid.
    copy = tmp_path / "copy"
    shutil.copytree(generated, copy)
    os.utime(copy / "demo.py", ns=(1, 1))
    make_read_only(copy)
    try:
        before = snapshot(copy)
        result = import_in_fresh_python(copy)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(pyc_path(copy / "demo.py"))
        assert snapshot(copy) == before
    finally:
        make_writable(copy)


def test_the_read_only_check_fails_without_the_pyc(tmp_path: Path) -> None:
    """The probe above can fail: without bytecode the import compiles."""
    assert main(["generate", str(DEMO_X), "-o", str(tmp_path), "-q"]) == 0
    assert not (tmp_path / "__pycache__").exists()
    result = import_in_fresh_python(tmp_path)
    assert result.returncode != 0 and "compiled from source" in result.stderr


def test_an_edited_module_is_not_run_from_its_stale_pyc(tmp_path: Path) -> None:
    module = tmp_path / "demo.py"
    assert main(["generate", str(DEMO_X), "-o", str(tmp_path), "--pyc", "-q"]) == 0
    with open(module, "a") as handle:
        handle.write("\nEDITED = True\n")
    assert not pyc_matches(module)
    code = "import demo; print(demo.EDITED)"
    result = import_in_fresh_python(tmp_path, code)
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr


def test_write_pyc_reports_a_module_that_does_not_compile(tmp_path: Path) -> None:
    from xdrgen.diagnostics import XdrgenError

    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    with pytest.raises(XdrgenError, match="broken.py: cannot compile it to bytecode: SyntaxError"):
        write_pyc(broken)
    assert not pyc_path(broken).exists()


PYPROJECT = """\
[tool.xdrgen]
output = "pkg/gen"
pyc = true

[[tool.xdrgen.modules]]
source = "proto/widgets.x"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "proto").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "proto" / "widgets.x").write_text("struct widget { int size; };\n")
    return root


def manifest_bytecode(root: Path) -> dict[str, str]:
    data = json.loads((root / "pkg" / "gen" / MANIFEST_NAME).read_text())
    return dict(data["outputs"]["widgets.py"]["bytecode"])


def test_build_writes_records_and_checks_the_pyc(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = project / "pkg" / "gen" / "widgets.py"
    pyc = pyc_path(module)
    name = f"__pycache__/widgets.{cache_tag()}.pyc"
    status, out = cli(capsys, "build", "--project", project)
    assert status == 0 and "generated" in out and "compiled" in out
    assert pyc_matches(module)
    assert manifest_bytecode(project) == {name: hashlib.sha256(pyc.read_bytes()).hexdigest()}
    assert cli(capsys, "build", "--check", "--project", project)[0] == 0

    # A missing pyc is stale; building again compiles it without regenerating the module.
    module_mtime = module.stat().st_mtime_ns
    pyc.unlink()
    status, out = cli(capsys, "build", "--check", "--project", project)
    assert status == 1 and f"stale: {pyc}: missing (pyc = true; bytecode for {cache_tag()})" in out
    status, out = cli(capsys, "build", "--project", project)
    assert status == 0 and "compiled" in out and "generated" not in out
    assert module.stat().st_mtime_ns == module_mtime
    assert cli(capsys, "build", "--check", "--project", project)[0] == 0

    # A pyc that is not the one xdrgen wrote is stale.
    data = bytearray(pyc.read_bytes())
    data[-1] ^= 1
    pyc.write_bytes(bytes(data))
    status, out = cli(capsys, "build", "--check", "--project", project)
    assert status == 1 and "replaced or edited since xdrgen wrote it" in out


def test_build_replaces_the_pyc_of_a_regenerated_module(project: Path) -> None:
    config = load_config(project)
    build_project(config)
    module = project / "pkg" / "gen" / "widgets.py"
    first = manifest_bytecode(project)
    (project / "proto" / "widgets.x").write_text("struct widget { int size; hyper weight; };\n")
    assert [s.output for s in check_project(config)] == [module]
    report = build_project(config)
    assert report.written == [module, pyc_path(module)]
    assert pyc_matches(module)
    assert manifest_bytecode(project) != first
    assert check_project(config) == []


def test_build_without_pyc_checks_no_bytecode_and_drops_what_it_recorded(project: Path) -> None:
    (project / "pyproject.toml").write_text(PYPROJECT.replace("pyc = true\n", ""))
    config = load_config(project)
    assert not config.pyc
    module = project / "pkg" / "gen" / "widgets.py"
    build_project(config)
    assert not pyc_path(module).exists() and check_project(config) == []
    # --pyc asks for it (build and check); the manifest records it.
    assert main(["build", "--pyc", "-q", "--project", str(project)]) == 0
    assert pyc_matches(module) and manifest_bytecode(project)
    # Regenerated without pyc: the recorded bytecode (now of old text) is removed.
    (project / "proto" / "widgets.x").write_text("struct widget { unsigned int size; };\n")
    build_project(config)
    assert not pyc_path(module).exists()
    data = json.loads((project / "pkg" / "gen" / MANIFEST_NAME).read_text())
    assert "bytecode" not in data["outputs"]["widgets.py"]


def test_pyc_key_must_be_a_boolean(project: Path, tmp_path: Path) -> None:
    from xdrgen.build.config import parse_config
    from xdrgen.diagnostics import XdrgenError

    (project / "pyproject.toml").write_text(PYPROJECT.replace("pyc = true", 'pyc = "yes"'))
    with pytest.raises(XdrgenError, match="'pyc' must be true or false"):
        load_config(project)
    table = {"output": "gen", "modules": [{"source": "a.x"}]}
    assert parse_config(table, tmp_path).pyc is False  # the default
