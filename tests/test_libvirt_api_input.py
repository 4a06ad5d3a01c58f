"""``--libvirt-api``: libvirt's API description shapes the server skeleton and is a recorded input.

The XML files here are written by the test in libvirt-api.xml's format (no
libvirt data is copied): they name a few functions of demo.x's procedures with
libvirt-style spellings and modules, so the generated "not supported" answers
must follow the file, and editing the file must regenerate the module (the
generate cache and the build manifest both record it).
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from xdrgen.build.manifest import MANIFEST_NAME
from xdrgen.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO = REPO_ROOT / "protocols" / "demo.x"


def api_xml(lookup_name: str, module: str, domains: dict[str, int]) -> str:
    lines = [
        '<?xml version="1.0" encoding="ISO-8859-1"?>',
        "<api name='libvirt'>",
        "  <symbols>",
        f"    <function name='{lookup_name}' file='{module}' module='{module}' version='1.0.0'/>",
        "    <function name='virItemGetCounters' file='libvirt-storage' module='libvirt-storage' version='1.0.0'/>",
        *(f"    <enum name='{n}' file='virterror' value='{v}' type='virErrorDomain'/>" for n, v in domains.items()),
        "  </symbols>",
        "</api>",
    ]
    return "\n".join(lines) + "\n"


def unsupported_line(text: str, method: str) -> str:
    """The ``raise _virnet.unsupported(...)`` line of a handler method in generated code."""
    start = text.index(f"    async def {method}(", text.index("class DemoHandler"))
    return next(line.strip() for line in text[start:].splitlines() if "_virnet.unsupported(" in line)


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "demo.x"
    shutil.copy(DEMO, source)
    xml = tmp_path / "api.xml"
    xml.write_text(api_xml("virItemLookupByNAME", "libvirt-network", {"VIR_FROM_NETWORK": 19, "VIR_FROM_STORAGE": 18}))
    return source, xml


def test_names_and_domains_come_from_the_xml(inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, xml = inputs
    out = tmp_path / "out"
    assert main(["generate", str(source), "-o", str(out), "--libvirt-api", str(xml)]) == 0
    text = (out / "demo.py").read_text()
    assert unsupported_line(text, "item_lookup_by_name") == '''raise _virnet.unsupported("virItemLookupByNAME", 19)'''
    assert unsupported_line(text, "item_get_counters") == '''raise _virnet.unsupported("virItemGetCounters", 18)'''
    # Not in the XML: the capitalised procedure name, in the domain error domain.
    assert unsupported_line(text, "item_create") == '''raise _virnet.unsupported("virItemCreate", 20)'''
    assert "--libvirt-api api.xml" in text  # the banner names the option


def test_without_the_xml_names_follow_the_procedure(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    source, _ = inputs
    assert main(["generate", str(source), "-o", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "demo.py").read_text()
    assert unsupported_line(text, "item_lookup_by_name") == '''raise _virnet.unsupported("virItemLookupByName", 20)'''


def test_editing_the_xml_regenerates(inputs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDRGEN_CACHE_DIR", str(tmp_path / "cache"))
    source, xml = inputs
    out = tmp_path / "out"
    argv = ["generate", str(source), "-o", str(out), "--libvirt-api", str(xml)]
    assert main(argv) == 0
    first = (out / "demo.py").read_text()
    assert main(argv) == 0
    assert (out / "demo.py").read_text() == first
    xml.write_text(api_xml("virItemLookupByName", "libvirt-storage", {"VIR_FROM_STORAGE": 18}))
    assert main(argv) == 0
    assert unsupported_line((out / "demo.py").read_text(), "item_lookup_by_name") == '''raise _virnet.unsupported("virItemLookupByName", 18)'''


def test_build_records_the_xml_and_sees_it_change(inputs: tuple[Path, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    source, xml = inputs
    root = tmp_path
    (root / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.xdrgen]
        output = "gen"
        libvirt-api = ["api.xml"]

        [[tool.xdrgen.modules]]
        source = "demo.x"
        """))
    assert main(["build", "--project", str(root)]) == 0
    manifest = json.loads((root / "gen" / MANIFEST_NAME).read_text())
    record = manifest["outputs"]["demo.py"]
    assert "api.xml" in record["inputs"] and record["options"]["libvirt_api"] == ["api.xml"]
    capsys.readouterr()
    assert main(["build", "--check", "--project", str(root)]) == 0
    xml.write_text(api_xml("virItemLookupByName", "libvirt-storage", {"VIR_FROM_STORAGE": 18}))
    assert main(["build", "--check", "--project", str(root)]) == 1
    assert "demo.py: changed input(s): api.xml" in capsys.readouterr().out
    assert main(["build", "--project", str(root)]) == 0
    assert '"virItemLookupByName", 18' in (root / "gen" / "demo.py").read_text()


def test_missing_or_broken_xml_is_a_clear_error(inputs: tuple[Path, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    source, xml = inputs
    assert main(["generate", str(source), "-o", str(tmp_path / "o1"), "--libvirt-api", str(tmp_path / "none.xml")]) != 0
    assert "none.xml: no such file (--libvirt-api)" in capsys.readouterr().err
    xml.write_text("<api><symbols><function name='x'")
    assert main(["generate", str(source), "-o", str(tmp_path / "o2"), "--libvirt-api", str(xml)]) != 0
    err = capsys.readouterr().err
    assert "api.xml: not libvirt's API XML" in err and "Traceback" not in err
