"""The built wheel works on its own, and generated code needs only the runtime.

The wheel is built from the working tree and installed (not editable) into a
fresh venv; every command then runs from a directory outside the repository so
that nothing can be imported from the source tree by accident.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_X = REPO_ROOT / "protocols" / "demo.x"
TEMPLATES = REPO_ROOT / "templates"
#: Generation-time dependencies that generated code must never import.
GENERATOR_ONLY = ("ply", "jinja2", "black")


def run(cmd: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; on failure, fail the test with its output.

    PYTHONPATH is dropped (a worktree sets it to its checkout): only what the
    venv has installed may provide ``xdrgen`` here.
    """
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc.stdout


def make_venv(path: Path) -> Path:
    """A venv with pip-less own site-packages, this interpreter's packages visible after it.

    Dependencies (ply, jinja2, black, pip) come from the running environment so
    no network is needed. They are added by a ``.pth`` of plain directories, so
    that environment's own ``.pth`` files (an editable xdrgen) are not processed:
    only what is installed into the venv provides ``xdrgen``.
    """
    venv.create(path, with_pip=False)
    python = path / "bin" / "python"
    purelib = run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=path,
    ).strip()
    site_dirs = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (Path(purelib) / "outer_environment.pth").write_text("\n".join(site_dirs) + "\n")
    return python


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("wheel")
    run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            outdir,
            ".",
        ],
        cwd=REPO_ROOT,
    )
    wheels = list(outdir.glob("pyxdrgen-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bin directory of a fresh venv with the wheel installed, not editable."""
    root = tmp_path_factory.mktemp("venv")
    python = make_venv(root / "venv")
    run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel],
        cwd=root,
    )
    return python.parent


def test_wheel_contains_every_template(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    packaged = {
        n.removeprefix("xdrgen/templates/")
        for n in names
        if n.startswith("xdrgen/templates/") and not n.endswith("/")
    }
    in_repo = {
        p.relative_to(TEMPLATES).as_posix()
        for p in TEMPLATES.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert in_repo, f"no templates under {TEMPLATES}"
    assert packaged == in_repo


def test_wheel_ships_the_runtime(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "xdrgen/runtime/__init__.py" in names


def test_wheel_has_pep561_marker(wheel: Path) -> None:
    """Users run mypy --strict on generated code, which imports xdrgen.runtime."""
    with zipfile.ZipFile(wheel) as archive:
        assert "xdrgen/py.typed" in archive.namelist()


def test_installed_wheel_is_what_runs(installed: Path, tmp_path: Path) -> None:
    where = run(
        [installed / "python", "-c", "import xdrgen; print(xdrgen.__file__)"],
        cwd=tmp_path,
    ).strip()
    assert Path(where).is_relative_to(installed.parent), where
    assert not Path(where).is_relative_to(REPO_ROOT), where


def test_installed_version(installed: Path, tmp_path: Path, wheel: Path) -> None:
    out = run([installed / "xdrgen", "--version"], cwd=tmp_path)
    version = re.fullmatch(r"pyxdrgen-([^-]+)-.*\.whl", wheel.name)
    assert version is not None
    assert out.strip() == f"xdrgen {version.group(1)}"


def test_installed_check_demo(installed: Path, tmp_path: Path) -> None:
    out = run([installed / "xdrgen", "check", DEMO_X], cwd=tmp_path)
    assert "demo.x" in out and "DEMO_RPC_PROGRAM" in out


def test_installed_generate_and_import(installed: Path, tmp_path: Path) -> None:
    """Needs ``xdrgen generate`` (templates read from inside the installed wheel)."""
    outdir = tmp_path / "out"
    run([installed / "xdrgen", "generate", DEMO_X, "-o", outdir], cwd=tmp_path)
    assert (outdir / "demo.py").is_file()
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import demo\n"
        "codec = demo.XDR_TYPES['demo_kind']\n"
        "data = codec.encode(demo.demo_kind.DEMO_KIND_ASSEMBLY)\n"
        "assert data == bytes([0, 0, 0, 0x10]), data\n"
        "assert codec.decode(data) == demo.demo_kind.DEMO_KIND_ASSEMBLY\n"
        "import xdrgen.runtime; print(xdrgen.runtime.__file__)\n"
    )
    where = run([installed / "python", "-c", probe, outdir], cwd=tmp_path).strip()
    assert Path(where).is_relative_to(installed.parent), where


@pytest.fixture(scope="module")
def generated_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("generated")
    run(
        [sys.executable, "-m", "xdrgen.cli", "generate", DEMO_X, "-o", outdir],
        cwd=outdir,
    )
    assert (outdir / "demo.py").is_file()
    return outdir


def test_generated_module_imports_only_the_runtime(generated_demo: Path) -> None:
    probe = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); import demo\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = run(
        [sys.executable, "-c", probe, generated_demo], cwd=generated_demo, env=env
    )
    loaded = json.loads(out)
    leaked = [m for m in loaded if m.split(".")[0] in GENERATOR_ONLY]
    assert leaked == []
    ours = [m for m in loaded if m.split(".")[0] == "xdrgen"]
    assert "xdrgen.runtime" in ours
    assert [
        m for m in ours if m != "xdrgen" and not m.startswith("xdrgen.runtime")
    ] == []


def _engine_files(names: list[str], prefix: str = "") -> list[str]:
    """The compiled engine's files (xdrgen/runtime/_engine.<suffix>) among ``names``."""
    pattern = re.escape(prefix) + r"xdrgen/runtime/_engine\..+\.(so|pyd)"
    return [n for n in names if re.fullmatch(pattern, n)]


def test_wheel_carries_the_engine_when_a_compiler_is_there(wheel: Path) -> None:
    """The wheel hook compiles every file of xdrgen/runtime/_engine_c/ into one module;
    a hook that silently failed would give a pure wheel."""
    from xdrgen._build_engine import compiler

    with zipfile.ZipFile(wheel) as archive:
        engine = _engine_files(archive.namelist())
    if compiler() is None:
        assert engine == []
        assert wheel.name.endswith("-py3-none-any.whl")
    else:
        assert len(engine) == 1, engine
        assert not wheel.name.endswith("-py3-none-any.whl")


def test_installed_wheel_runs_the_engine(installed: Path, tmp_path: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        if not _engine_files(archive.namelist()):
            pytest.skip("no C compiler here: the wheel is pure Python")
    probe = (
        "from xdrgen.runtime import _engine\n"
        "print(_engine.__file__, _engine.MAX_DEPTH)\n"
    )
    where, depth = run([installed / "python", "-c", probe], cwd=tmp_path).split()
    assert Path(where).is_relative_to(installed.parent), where
    assert depth == "200"


def test_sdist_builds_and_its_wheel_matches_the_tree_wheel(wheel: Path, tmp_path: Path) -> None:
    """``python -m build`` (sdist, then the wheel from the unpacked sdist): the sdist
    carries everything the wheel needs, the engine's C sources included; without a
    compiler (CC names none) the same sdist gives the pure-Python wheel, which
    differs from the tree's only by the engine."""
    import tarfile

    outdir = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", outdir, "."], cwd=REPO_ROOT)
    (sdist,) = outdir.glob("pyxdrgen-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path / "unpacked", filter="data")
    top = sdist.name.removesuffix(".tar.gz")
    engine_sources = sorted(
        p.relative_to(REPO_ROOT).as_posix()
        for p in (REPO_ROOT / "xdrgen" / "runtime" / "_engine_c").iterdir()
        if p.suffix in (".c", ".h")
    )
    assert "xdrgen/runtime/_engine_c/engine.h" in engine_sources
    for needed in ("pyproject.toml", "README.md", "xdrgen/__init__.py", "xdrgen/runtime/codec.py",
                   "templates/module.py.j2", "protocols/demo.x", "hatch_build.py",
                   "xdrgen/_build_engine.py", *engine_sources):
        assert f"{top}/{needed}" in names, needed
    assert _engine_files(names, f"{top}/") == []  # sources only, nothing built
    (from_sdist,) = outdir.glob("pyxdrgen-*.whl")
    with zipfile.ZipFile(from_sdist) as a, zipfile.ZipFile(wheel) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        tree_names = b.namelist()
    assert from_sdist.name == wheel.name  # the same tags (platform with the engine)

    pure_out = tmp_path / "pure"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["CC"] = str(tmp_path / "no-such-compiler")
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", pure_out, "."],
        cwd=tmp_path / "unpacked" / top, env=env)
    (pure,) = pure_out.glob("pyxdrgen-*.whl")
    assert pure.name.endswith("-py3-none-any.whl"), pure.name
    with zipfile.ZipFile(pure) as archive:
        pure_names = archive.namelist()
    assert _engine_files(pure_names) == []
    engine = _engine_files(tree_names)
    assert sorted(pure_names) == sorted(n for n in tree_names if n not in engine)
