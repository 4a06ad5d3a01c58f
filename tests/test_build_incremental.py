"""`xdrgen build` / `xdrgen build --check` on a small project: incremental
regeneration, drift detection naming the changed file, and writing nothing when
nothing changed."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from xdrgen.build import build_project, check_project, load_config
from xdrgen.build.manifest import MANIFEST_NAME
from xdrgen.cli import main

PYPROJECT = """\
[project]
name = "widgets"
version = "1.0"

[tool.xdrgen]
output = "pkg/gen"
include-dirs = ["proto"]

[[tool.xdrgen.modules]]
source = "proto/widgets.x"
constants-from = ["proto/common.h"]

[[tool.xdrgen.modules]]
source = "proto/gadgets.x"
name = "gadget_protocol"
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write(root / "pyproject.toml", PYPROJECT)
    write(root / "proto" / "common.h", "#define WIDGET_NAME_MAX 32\n")
    write(root / "proto" / "shared.x", "const SHARED_LIMIT = 4;\n")
    write(
        root / "proto" / "widgets.x",
        """\
        #include "shared.x"
        struct widget {
            string name<WIDGET_NAME_MAX>;
            int sizes<SHARED_LIMIT>;
        };
        """,
    )
    write(root / "proto" / "gadgets.x", "struct gadget { unsigned hyper serial; };\n")
    return root


def outputs(root: Path) -> dict[str, Path]:
    gen = root / "pkg" / "gen"
    return {name: gen / name for name in ("widgets.py", "gadget_protocol.py", MANIFEST_NAME)}


def mtimes(root: Path) -> dict[str, int]:
    return {name: path.stat().st_mtime_ns for name, path in outputs(root).items()}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def touch_back(root: Path) -> None:
    """Move outputs' mtimes into the past, so a rewrite would show even on coarse clocks."""
    for path in outputs(root).values():
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))


def test_first_build_generates_everything_and_check_passes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(capsys, "build", "--check", "--project", str(project))
    assert status == 1
    assert "widgets.py: missing" in out and "gadget_protocol.py: missing" in out

    status, out = run(capsys, "build", "--project", str(project))
    assert status == 0, out
    assert "generated" in out and "widgets.py" in out and "gadget_protocol.py" in out
    for path in outputs(project).values():
        assert path.is_file()
    assert run(capsys, "build", "--check", "--project", str(project))[0] == 0

    manifest = json.loads(outputs(project)[MANIFEST_NAME].read_text())
    widgets = manifest["outputs"]["widgets.py"]
    # Every file read is recorded, including the #include and the C header.
    assert set(widgets["inputs"]) == {"proto/widgets.x", "proto/shared.x", "proto/common.h"}
    assert widgets["options"]["constants_from"] == ["proto/common.h"]
    assert widgets["options"]["include_dirs"] == ["proto"]
    assert manifest["outputs"]["gadget_protocol.py"]["options"]["module"] == "gadget_protocol"


def test_second_build_writes_nothing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "build", "--project", str(project))[0] == 0
    touch_back(project)
    before = mtimes(project)
    status, out = run(capsys, "build", "--project", str(project))
    assert status == 0
    assert out == "2 generated module(s) up to date\n"
    assert mtimes(project) == before


@pytest.mark.parametrize("changed", ["proto/common.h", "proto/shared.x", "proto/widgets.x"])
def test_changed_input_is_named_and_only_its_output_regenerated(
    project: Path, changed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "build", "--project", str(project))[0] == 0
    touch_back(project)
    before = mtimes(project)
    target = project / changed
    if changed.endswith(".h"):
        target.write_text("#define WIDGET_NAME_MAX 48\n")
    else:
        target.write_text(target.read_text() + "\n/* edited */\n")

    status, out = run(capsys, "build", "--check", "--project", str(project))
    assert status == 1
    assert f"widgets.py: changed input(s): {changed}" in out
    assert "gadget_protocol" not in out

    status, out = run(capsys, "build", "--project", str(project))
    assert status == 0
    after = mtimes(project)
    assert after["widgets.py"] != before["widgets.py"]
    assert after[MANIFEST_NAME] != before[MANIFEST_NAME]
    assert after["gadget_protocol.py"] == before["gadget_protocol.py"]
    assert run(capsys, "build", "--check", "--project", str(project))[0] == 0
    if changed.endswith(".h"):
        # The new header value reached the generated code.
        assert "48" in outputs(project)["widgets.py"].read_text()


def test_check_does_not_parse_when_hashes_match(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(project)
    build_project(config)

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the drift check parsed a .x file")

    monkeypatch.setattr("xdrgen.frontend.load", no_parsing)
    monkeypatch.setattr("xdrgen.frontend.pipeline.load_module", no_parsing)
    assert check_project(config) == []
    assert build_project(config).written == []


def test_hand_edited_output_and_changed_options_are_stale(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "build", "--project", str(project))[0] == 0
    gadgets = outputs(project)["gadget_protocol.py"]
    gadgets.write_text(gadgets.read_text() + "# local edit\n")
    status, out = run(capsys, "build", "--check", "--project", str(project))
    assert status == 1 and "gadget_protocol.py: edited since it was generated" in out

    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'constants-from = ["proto/common.h"]',
            'constants-from = ["proto/common.h"]\ndefines = { EXTRA = "2" }',
        )
    )
    status, out = run(capsys, "build", "--check", "--project", str(project))
    assert status == 1 and "widgets.py: options changed" in out

    assert run(capsys, "build", "--project", str(project))[0] == 0
    assert "# local edit" not in gadgets.read_text()
    assert run(capsys, "build", "--check", "--project", str(project))[0] == 0


def test_generator_version_change_makes_outputs_stale(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(project)
    build_project(config)
    monkeypatch.setattr("xdrgen.build.incremental.__version__", "999.0")
    stale = check_project(config)
    assert [s.output.name for s in stale] == ["widgets.py", "gadget_protocol.py"]
    assert all("999.0" in s.reason for s in stale)


def test_removed_module_output_is_removed(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "build", "--project", str(project))[0] == 0
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text[: text.index('[[tool.xdrgen.modules]]\nsource = "proto/gadgets.x"')])
    status, out = run(capsys, "build", "--project", str(project))
    assert status == 0 and "removed" in out
    assert not outputs(project)["gadget_protocol.py"].exists()
    manifest = json.loads(outputs(project)[MANIFEST_NAME].read_text())
    assert list(manifest["outputs"]) == ["widgets.py"]


def test_bad_x_file_is_a_located_error_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "proto" / "gadgets.x").write_text("struct gadget { unsigned hyper serial }\n")
    status, out = run(capsys, "build", "--project", str(project))
    assert status == 2
    assert "gadgets.x:1:" in out
    assert "Traceback" not in out
    assert not outputs(project)["gadget_protocol.py"].exists()
    # What did build is recorded: only the broken module is reported by the check.
    status, out = run(capsys, "build", "--check", "--project", str(project))
    assert status == 1
    assert "gadget_protocol.py: missing" in out and "widgets.py" not in out


def test_manifest_is_deterministic(project: Path, tmp_path: Path) -> None:
    build_project(load_config(project))
    first = outputs(project)[MANIFEST_NAME].read_bytes()
    outputs(project)[MANIFEST_NAME].unlink()
    build_project(load_config(project), force=True)
    assert outputs(project)[MANIFEST_NAME].read_bytes() == first
