"""examples/example_package builds into a wheel in a fresh virtual environment
through xdrgen's hatchling hook; the wheel ships the generated module (not the
.x) and the installed package imports and uses it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from test_corpus import mypy_strict_errors

EXAMPLE = REPO_ROOT / "examples" / "example_package"


def run(*argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def copy_example(tmp_path: Path) -> Path:
    """A copy of the example package laid out like the repository (so the tree stays
    untouched): tmp_path/repo/examples/example_package, next to repo/protocols/demo.x."""
    project = tmp_path / "repo" / "examples" / "example_package"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__")
    )
    (tmp_path / "repo" / "protocols").mkdir()
    shutil.copy(REPO_ROOT / "protocols" / "demo.x", tmp_path / "repo" / "protocols" / "demo.x")
    return project


@pytest.fixture(scope="session")
def xdrgen_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, built once per session (no network: --no-isolation)."""
    out = tmp_path_factory.mktemp("xdrgen-wheel")
    run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, REPO_ROOT)
    (wheel,) = out.glob("pyxdrgen-*.whl")
    return wheel


def test_example_package_wheel(xdrgen_wheel: Path, tmp_path: Path) -> None:
    # Build from a copy laid out like the repository, so the tree stays untouched.
    project = copy_example(tmp_path)
    generated = project / "src" / "inventory_client" / "demo_protocol.py"
    assert not generated.exists()

    # A fresh venv; system site-packages supplies hatchling, ply, jinja2, black (speed,
    # and no network), while xdrgen itself comes from the wheel installed into the venv.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["XDRGEN_CACHE_DIR"] = str(tmp_path / "cache")
    pip: list[str | Path] = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run(*pip, "install", "--no-deps", "--no-index", xdrgen_wheel, env=env)
    where = run(python, "-c", "import xdrgen; print(xdrgen.__file__)", cwd=tmp_path, env=env)
    assert str(env_dir) in where, "the venv must use the xdrgen wheel, not the checkout"

    dist = tmp_path / "dist"
    run(*pip, "wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", dist, project, env=env)
    (wheel,) = dist.glob("inventory_client-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "inventory_client/demo_protocol.py" in names
    assert "inventory_client/__init__.py" in names
    # The hook compiled the generated module (checked-hash, for the building interpreter).
    assert f"inventory_client/__pycache__/demo_protocol.{sys.implementation.cache_tag}.pyc" in names
    assert not [n for n in names if n.endswith(".x")]
    assert not [n for n in names if n.endswith(".xdrgen-manifest.json")]
    # The hook generated into the project (incrementally: a manifest records it).
    assert generated.is_file()
    assert run(python, "-m", "xdrgen.cli", "build", "--check", "--project", project, env=env).startswith(
        "1 generated"
    )

    # --no-compile: the installed .pyc is the wheel's, not one pip compiled.
    run(*pip, "install", "--no-compile", "--no-deps", "--no-index", wheel, env=env)
    code = (
        "import inventory_client as ic, inventory_client.demo_protocol as p;"
        "data = ic.pack_dimensions(1.5, 2.0, 3.25);"
        "print(len(data), ic.unpack_dimensions(data), ic.kind_name(16), p.__file__)"
    )
    out = run(python, "-c", code, cwd=tmp_path, env=env)
    assert out.startswith("16 demo_dimensions(width_m=1.5, height_m=2.0, weight_kg=3.25) DEMO_KIND_ASSEMBLY ")
    assert str(env_dir) in out  # imported from the installed wheel, not the source tree
    # The generated module is imported from the wheel's .pyc: compiling it would fail.
    probe = (
        "import importlib._bootstrap_external as b\n"
        "compile_source = b.SourceLoader.source_to_code\n"
        "def refuse(self, data, path, *args, **kwargs):\n"
        "    assert not str(path).endswith('demo_protocol.py'), 'compiled ' + str(path)\n"
        "    return compile_source(self, data, path, *args, **kwargs)\n"
        "b.SourceLoader.source_to_code = refuse\n"
        "import inventory_client.demo_protocol as p\n"
        "print(p.__spec__.cached)\n"
    )
    cached = run(python, "-c", probe, cwd=tmp_path, env=env).strip()
    assert cached.startswith(str(env_dir)) and cached.endswith(".pyc")


def test_sdist_then_wheel_ships_pregenerated_module(tmp_path: Path) -> None:
    """`python -m build` makes the wheel from the sdist, where ../../protocols/demo.x is
    absent: the sdist carries the generated module and manifest, and the hook uses them."""
    project = copy_example(tmp_path)
    dist = tmp_path / "dist"
    # This checkout's build hook (the environment's install may be another checkout).
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env["XDRGEN_CACHE_DIR"] = str(tmp_path / "cache")
    # -x: the hook's distribution may be installed under its former name (xdrgen) here.
    out = run(sys.executable, "-m", "build", "--no-isolation", "-x", "--outdir", dist, project, env=env)
    assert "shipping the pre-generated modules" in out
    (sdist,) = dist.glob("inventory_client-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert "inventory_client-0.1.0/src/inventory_client/demo_protocol.py" in members
    assert "inventory_client-0.1.0/src/inventory_client/.xdrgen-manifest.json" in members
    assert not [m for m in members if m.endswith(".x")]
    assert not [m for m in members if m.endswith(".pyc")]  # bytecode goes in wheels only
    (wheel,) = dist.glob("inventory_client-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "inventory_client/demo_protocol.py" in names
    assert f"inventory_client/__pycache__/demo_protocol.{sys.implementation.cache_tag}.pyc" in names


def test_hook_option_pyc_false_ships_no_bytecode(tmp_path: Path) -> None:
    project = copy_example(tmp_path)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert "[tool.hatch.build.hooks.xdrgen]\n" in text
    pyproject.write_text(text.replace("[tool.hatch.build.hooks.xdrgen]\n", "[tool.hatch.build.hooks.xdrgen]\npyc = false\n"))
    dist = tmp_path / "dist"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), XDRGEN_CACHE_DIR=str(tmp_path / "cache"))
    run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "-x", "--outdir", dist, project, env=env)
    (wheel,) = dist.glob("inventory_client-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "inventory_client/demo_protocol.py" in names
    assert not [n for n in names if n.endswith(".pyc")]


def test_example_package_is_mypy_strict_clean(tmp_path: Path) -> None:
    """The repository's mypy run leaves the example package's sources out (they import a
    module that exists once built): generated with `xdrgen build`, they pass mypy --strict."""
    project = copy_example(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), XDRGEN_CACHE_DIR=str(tmp_path / "cache"))
    run(sys.executable, "-m", "xdrgen.cli", "build", "--project", project, env=env)
    package = project / "src" / "inventory_client"
    assert (package / "demo_protocol.py").is_file()
    assert mypy_strict_errors([package], tmp_path / "mypy-cache") == {}
