"""The generator fingerprint (what invalidates cached and built outputs when the
generator itself changes), ``xdrgen build``'s use of it, old manifests, and the
bound on the manifest cache directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from importlib.metadata import version as installed_version
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

import pytest

import xdrgen
from xdrgen.build import build_project, check_project, load_config
from xdrgen.build.manifest import FORMAT, MANIFEST_NAME, read_manifest
from xdrgen.cli import main
from xdrgen.generator import cache, generate_file
from xdrgen.generator.resources import template_dir

REPO = Path(__file__).resolve().parent.parent
DEMO_X = REPO / "protocols" / "demo.x"

Roots = list[tuple[str, Path, tuple[str, ...]]]


# ------------------------------------------------------------------ helpers


def copy_checkout(dest: Path) -> Path:
    """A copy of this xdrgen (package + templates beside it, as in a checkout)."""
    package = Path(xdrgen.__file__).resolve().parent
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(package, dest / "xdrgen", ignore=ignore)
    shutil.copytree(template_dir(), dest / "templates", ignore=ignore)
    return dest


def roots_of(checkout: Path) -> Roots:
    return [
        ("xdrgen", checkout / "xdrgen", cache.PACKAGE_SOURCES),
        ("templates", checkout / "templates", cache.TEMPLATE_SOURCES),
    ]


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def run_in(checkout: Path, cache_root: Path, code: str, *argv: str) -> str:
    """Run ``code`` with the copied xdrgen first on the path (from inside the
    copy: ``-c`` puts the working directory before PYTHONPATH); its stdout."""
    env = dict(
        os.environ,
        PYTHONPATH=str(checkout),
        XDRGEN_CACHE_DIR=str(cache_root),
        PYTHONDONTWRITEBYTECODE="1",
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout + f"exit={done.returncode}\n"


GENERATE = textwrap.dedent("""\
    import json, sys
    from pathlib import Path
    import xdrgen
    from xdrgen.generator import generate_file
    result = generate_file(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps({"package": xdrgen.__file__, "cached": result.cached,
                      "changed": result.changed}))
    """)
CLI = "import sys; from xdrgen.cli import main; sys.exit(main(sys.argv[1:]))"


def generate_in(checkout: Path, cache_root: Path, out: Path) -> dict[str, object]:
    stdout = run_in(checkout, cache_root, GENERATE, str(DEMO_X), str(out))
    result: dict[str, object] = json.loads(stdout.splitlines()[0])
    assert str(result["package"]).startswith(str(checkout)), result
    return result


# ------------------------------------------------------------------ what is hashed


def test_real_roots_cover_templates_in_subdirectories_front_end_model_generator() -> (
    None
):
    names = cache.fingerprint_files(cache.fingerprint_roots())
    for expected in (
        "templates/module.py.j2",
        "templates/rpc/client.py.j2",
        "templates/rpc/prelude.py.j2",
        "xdrgen/__init__.py",
        "xdrgen/model.py",
        "xdrgen/frontend/parser.py",
        "xdrgen/frontend/lexer.py",
        "xdrgen/generator/render.py",
        "xdrgen/generator/rpc.py",
    ):
        assert expected in names
    every_template = {
        "templates/" + p.relative_to(template_dir()).as_posix()
        for p in template_dir().rglob("*.j2")
    }
    assert every_template and every_template <= set(names)
    # Code that does not shape output (the runtime, the CLI) is left out.
    assert not any(n.startswith(("xdrgen/runtime/", "xdrgen/commands/")) for n in names)


def test_every_xdrgen_module_the_generator_imports_is_fingerprinted(
    tmp_path: Path,
) -> None:
    # A fresh interpreter, so only what generating demo.x (types and libvirt-style
    # RPC sections) really imports is in sys.modules.
    code = textwrap.dedent("""\
        import json, sys
        from pathlib import Path
        from xdrgen.generator import generate_source
        generate_source(Path(sys.argv[1]))
        print(json.dumps(sorted(
            m.__file__ for name, m in list(sys.modules.items())
            if name.split(".")[0] == "xdrgen" and getattr(m, "__file__", None))))
        """)
    done = subprocess.run(
        [sys.executable, "-c", code, str(DEMO_X)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    imported = {Path(p).resolve() for p in json.loads(done.stdout)}
    hashed = {
        p.resolve() for p in cache.fingerprint_files(cache.fingerprint_roots()).values()
    }
    assert any(p.parent.name == "frontend" for p in imported)
    assert imported - hashed == set()


def test_fingerprint_is_path_independent_and_sees_every_relevant_edit(
    tmp_path: Path,
) -> None:
    first = copy_checkout(tmp_path / "a")
    second = tmp_path / "b"
    shutil.copytree(first, second)
    base = cache.compute_fingerprint(roots_of(first))
    # Same sources elsewhere (a checkout vs an installed wheel): same fingerprint.
    assert cache.compute_fingerprint(roots_of(second)) == base

    edits = [
        second / "templates" / "rpc" / "client.py.j2",
        second / "xdrgen" / "frontend" / "lexer.py",
        second / "xdrgen" / "model.py",
        second / "xdrgen" / "generator" / "plan" / "planner.py",
        second / "xdrgen" / "generator" / "marshal" / "encode.py",
        second / "templates" / "struct.py.j2",
    ]
    seen = {base}
    for path in edits:
        original = path.read_bytes()
        append(path, "\n")
        changed = cache.compute_fingerprint(roots_of(second))
        assert changed not in seen, path
        seen.add(changed)
        path.write_bytes(original)
        assert cache.compute_fingerprint(roots_of(second)) == base

    # A new template in a subdirectory counts; files that shape nothing do not.
    (second / "templates" / "rpc" / "extra.py.j2").write_text("x\n")
    assert cache.compute_fingerprint(roots_of(second)) != base
    (second / "templates" / "rpc" / "extra.py.j2").unlink()
    (second / "xdrgen" / "frontend" / "NOTES.txt").write_text("notes\n")
    append(second / "xdrgen" / "runtime" / "codec.py", "\n")
    assert cache.compute_fingerprint(roots_of(second)) == base


def test_fingerprint_covers_black_version_and_is_computed_once() -> None:
    assert cache.distribution_version("black") == installed_version("black")
    assert cache.distribution_version("no_such_distribution_xdrgen") == "absent"
    roots = cache.fingerprint_roots()
    assert cache.compute_fingerprint(roots, ()) != cache.compute_fingerprint(roots)

    cache.generator_fingerprint.cache_clear()
    values = {cache.generator_fingerprint() for _ in range(3)}
    info = cache.generator_fingerprint.cache_info()
    assert len(values) == 1 and info.misses == 1 and info.hits == 2


# ------------------------------------------------------------------ xdrgen generate


def test_generate_cache_is_invalidated_by_front_end_and_subdirectory_template_edits(
    tmp_path: Path,
) -> None:
    checkout = copy_checkout(tmp_path / "checkout")
    cache_root, out = tmp_path / "cache", tmp_path / "out"
    assert generate_in(checkout, cache_root, out)["cached"] is False
    assert generate_in(checkout, cache_root, out)["cached"] is True

    # A front-end edit that does not change the output still forces a regeneration.
    append(checkout / "xdrgen" / "frontend" / "lexer.py", "\n# edited\n")
    again = generate_in(checkout, cache_root, out)
    assert again["cached"] is False and again["changed"] is False
    assert generate_in(checkout, cache_root, out)["cached"] is True

    # A template under templates/rpc/ whose edit reaches the output.
    prelude = checkout / "templates" / "rpc" / "prelude.py.j2"
    prelude.write_text("# fingerprint probe\n" + prelude.read_text())
    edited = generate_in(checkout, cache_root, out)
    assert edited["cached"] is False and edited["changed"] is True
    assert "# fingerprint probe" in (out / "demo.py").read_text()


# ------------------------------------------------------------------ xdrgen build


PYPROJECT = """\
[project]
name = "gizmos"
version = "1.0"

[tool.xdrgen]
output = "pkg/gen"

[[tool.xdrgen.modules]]
source = "proto/gizmos.x"

[[tool.xdrgen.modules]]
source = "proto/parts.x"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDRGEN_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "proj"
    (root / "proto").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "proto" / "gizmos.x").write_text(
        "struct gizmo { int size; string name<8>; };\n"
    )
    (root / "proto" / "parts.x").write_text("enum part { BOLT = 1, NUT = 2 };\n")
    return root


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def manifest_json(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (root / "pkg" / "gen" / MANIFEST_NAME).read_text()
    )
    return data


def rewrite_manifest(root: Path, data: dict[str, Any]) -> None:
    (root / "pkg" / "gen" / MANIFEST_NAME).write_text(json.dumps(data))


def test_build_records_the_fingerprint_and_version(project: Path) -> None:
    build_project(load_config(project))
    data = manifest_json(project)
    assert data["format"] == FORMAT
    outputs = data["outputs"]
    assert set(outputs) == {"gizmos.py", "parts.py"}
    for record in outputs.values():
        assert record["generator_fingerprint"] == cache.generator_fingerprint()
        assert record["generator_version"] == xdrgen.__version__


def test_build_regenerates_when_the_recorded_fingerprint_differs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "build", "--project", str(project))[0] == 0
    data = manifest_json(project)
    data["outputs"]["gizmos.py"]["generator_fingerprint"] = "0" * 64
    rewrite_manifest(project, data)
    gizmos = project / "pkg" / "gen" / "gizmos.py"
    parts = project / "pkg" / "gen" / "parts.py"
    for path in (gizmos, parts):
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))

    status, out = cli(capsys, "build", "--check", "--project", str(project))
    assert status == 1
    assert (
        f"gizmos.py: generated by another build of xdrgen {xdrgen.__version__}" in out
    )
    assert "fingerprint 000000000000, now" in out and "parts.py" not in out

    status, out = cli(capsys, "build", "--project", str(project))
    assert status == 0 and "gizmos.py" in out and "parts.py" not in out
    assert parts.stat().st_mtime_ns == 1_000_000_000  # only the stale one was touched
    rewritten = manifest_json(project)["outputs"]
    assert (
        rewritten["gizmos.py"]["generator_fingerprint"] == cache.generator_fingerprint()
    )
    assert cli(capsys, "build", "--check", "--project", str(project))[0] == 0


def test_build_in_an_edited_checkout_is_stale_then_regenerated(tmp_path: Path) -> None:
    checkout = copy_checkout(tmp_path / "checkout")
    proj = tmp_path / "proj"
    (proj / "proto").mkdir(parents=True)
    (proj / "pyproject.toml").write_text(PYPROJECT)
    (proj / "proto" / "gizmos.x").write_text("struct gizmo { int size; };\n")
    (proj / "proto" / "parts.x").write_text("enum part { BOLT = 1 };\n")
    cache_root = tmp_path / "cache"

    def build(*extra: str) -> str:
        return run_in(
            checkout, cache_root, CLI, "build", "--project", str(proj), *extra
        )

    assert build().endswith("exit=0\n")
    assert build("--check").endswith("exit=0\n")
    append(checkout / "xdrgen" / "frontend" / "resolve.py", "\n# edited\n")
    out = build("--check")
    assert out.endswith("exit=1\n")
    assert out.count("generated by another build of xdrgen") == 2
    out = build()
    assert "generated" in out and out.endswith("exit=0\n")
    assert build("--check").endswith("exit=0\n")


def test_old_format_manifest_is_read_and_everything_is_stale(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_project(load_config(project))
    data = manifest_json(project)
    data["format"] = 1
    for record in data["outputs"].values():
        del record["generator_fingerprint"]  # what format 1 looked like
    rewrite_manifest(project, data)

    manifest = read_manifest(project / "pkg" / "gen")
    assert set(manifest.outputs) == {"gizmos.py", "parts.py"}
    assert all(r.generator_fingerprint is None for r in manifest.outputs.values())
    stale = check_project(load_config(project))
    assert [s.output.name for s in stale] == ["gizmos.py", "parts.py"]
    assert all("did not fingerprint the generator" in s.reason for s in stale)

    status, out = cli(capsys, "build", "--project", str(project))
    assert status == 0 and "gizmos.py" in out and "parts.py" in out
    assert manifest_json(project)["format"] == FORMAT
    assert check_project(load_config(project)) == []


def test_newer_or_broken_manifest_is_a_clear_reason_or_located_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_project(load_config(project))
    data = manifest_json(project)
    rewrite_manifest(project, dict(data, format=99))
    status, out = cli(capsys, "build", "--check", "--project", str(project))
    assert status == 1
    assert (
        "gizmos.py: not usable: the manifest has format 99, this xdrgen writes" in out
    )

    data["outputs"]["parts.py"]["generator_fingerprint"] = 7
    rewrite_manifest(project, data)
    status, out = cli(capsys, "build", "--check", "--project", str(project))
    assert status == 2 and "Traceback" not in out
    assert MANIFEST_NAME in out and "not a valid xdrgen manifest" in out


# ------------------------------------------------------------------ cache bound


def make_manifests(directory: Path, count: int) -> list[str]:
    """``count`` manifests, oldest first, with distinct mtimes."""
    directory.mkdir(parents=True, exist_ok=True)
    names = [f"{i:02d}{'ab' * 15}.json" for i in range(count)]
    for i, name in enumerate(names):
        (directory / name).write_text("{}")
        os.utime(directory / name, ns=((i + 1) * 10**9, (i + 1) * 10**9))
    return names


def json_names(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("*.json")}


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    directory = tmp_path / "manifests"
    names = make_manifests(directory, 12)
    (directory / "in-flight.123.tmp").write_text("{")
    assert cache.prune_manifests(directory, 5) == 7
    assert json_names(directory) == set(names[-5:])
    assert (directory / "in-flight.123.tmp").exists()
    assert cache.prune_manifests(directory, 5) == 0
    assert cache.prune_manifests(tmp_path / "nowhere", 5) == 0


def test_prune_deletes_temporary_files_left_by_killed_writers(tmp_path: Path) -> None:
    directory = tmp_path / "manifests"
    names = make_manifests(directory, 3)
    stale, fresh = directory / "gone.77.tmp", directory / "in-flight.78.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    old = time.time() - cache.STALE_TMP_SECONDS - 60
    os.utime(stale, (old, old))
    # Under the bound no manifest goes, but the stale leftover does.
    assert cache.prune_manifests(directory, 5) == 0
    assert not stale.exists() and fresh.exists()
    assert json_names(directory) == set(names)


def test_store_leaves_no_temporary_file_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDRGEN_CACHE_DIR", str(tmp_path / "cache"))

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "read-only", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    out = tmp_path / "out.py"
    cache.store(tmp_path / "a.x", out, "key", {}, "0" * 64)
    monkeypatch.undo()
    manifests = tmp_path / "cache" / "manifests"
    assert sorted(p.name for p in manifests.iterdir()) == []


class VanishingScandir:
    """``os.scandir`` while another process deletes files: the third entry is
    deleted just before it is listed, and the oldest remaining one once the
    listing is done (before the pruner gets to unlink it)."""

    def __init__(self, real: Callable[[str | Path], Any], directory: Path) -> None:
        self.real = real
        self.directory = directory
        self.vanished: list[str] = []
        self.listing: Any = None

    def __call__(self, path: str | Path) -> Any:
        if Path(path) != self.directory:
            return self.real(path)
        self.listing = self.real(path)
        return self

    def __enter__(self) -> VanishingScandir:
        return self

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        assert self.listing is not None
        for index, entry in enumerate(self.listing):
            if index == 2:
                os.unlink(entry.path)
                self.vanished.append(entry.name)
            yield entry

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.listing is not None
        self.listing.close()
        # os.listdir, not glob: glob would come back here through os.scandir.
        remaining = [self.directory / n for n in os.listdir(self.directory)]
        oldest = min(remaining, key=lambda p: p.stat().st_mtime_ns)
        oldest.unlink()
        self.vanished.append(oldest.name)


def test_prune_survives_files_vanishing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "manifests"
    names = make_manifests(directory, 10)
    deleter = VanishingScandir(os.scandir, directory)
    monkeypatch.setattr(os, "scandir", deleter)
    removed = cache.prune_manifests(directory, 4)
    monkeypatch.undo()
    assert len(deleter.vanished) == 2
    survivors = [n for n in names if n not in deleter.vanished[:1]]
    assert json_names(directory) == set(survivors[-4:])
    # It saw 9 files and had 5 to delete; the other process took one of them.
    assert removed == 4


def test_concurrent_pruners_delete_each_file_once(tmp_path: Path) -> None:
    directory = tmp_path / "manifests"
    names = make_manifests(directory, 200)
    counts: list[int] = []
    errors: list[BaseException] = []

    def prune() -> None:
        try:
            counts.append(cache.prune_manifests(directory, 50))
        except BaseException as exc:  # pragma: no cover - the failure being tested
            errors.append(exc)

    threads = [threading.Thread(target=prune) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(counts) == 150
    assert json_names(directory) == set(names[-50:])


def test_store_bounds_the_cache_and_hits_count_as_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDRGEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "MAX_MANIFESTS", 3)
    source = tmp_path / "tiny.x"
    source.write_text("const TINY = 1;\n")
    outs = {name: tmp_path / name for name in "abcd"}
    manifests = {
        name: cache._manifest_path(out / "tiny.py") for name, out in outs.items()
    }

    for i, name in enumerate("abc"):
        assert generate_file(source, outs[name]).cached is False
        os.utime(manifests[name], ns=((i + 1) * 10**9, (i + 1) * 10**9))
    # A cache hit on the oldest makes it the most recently used.
    assert generate_file(source, outs["a"]).cached is True
    assert generate_file(source, outs["d"]).cached is False
    directory = manifests["a"].parent
    assert json_names(directory) == {manifests[n].name for n in "acd"}
    # Rewriting a manifest that exists adds nothing, so it prunes nothing...
    monkeypatch.setattr(cache, "MAX_MANIFESTS", 2)
    (outs["c"] / "tiny.py").unlink()
    assert generate_file(source, outs["c"]).cached is False
    assert len(json_names(directory)) == 3
    # ...and the next new one takes the directory back to the bound.
    assert generate_file(source, tmp_path / "e").cached is False
    assert len(json_names(directory)) == 2
