"""[tool.xdrgen] parsing: defaults, merging, and clear errors for bad tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from xdrgen.build.config import load_config, parse_config
from xdrgen.build.manifest import portable_path
from xdrgen.diagnostics import XdrgenError


def test_defaults_merge_and_relative_paths(tmp_path: Path) -> None:
    table = {
        "output": "src/pkg/gen",
        "defines": {"A": "1", "B": 2},
        "constants-from": ["include/top.h"],
        "modules": [
            {
                "source": "../libvirt/src/remote/remote_protocol.x",
                "defines": {"B": "3"},
                "constants-from": ["x.h"],
            },
            {"source": "proto/my-proto.x", "name": "mine", "cpp": True},
        ],
    }
    config = parse_config(table, tmp_path)
    assert config.output == tmp_path / "src" / "pkg" / "gen"
    remote, mine = config.modules
    assert remote.name == "remote_protocol"
    assert remote.source == tmp_path.parent / "libvirt" / "src" / "remote" / "remote_protocol.x"
    assert remote.options.defines == {"A": "1", "B": "3"}
    assert remote.options.constants_from == (tmp_path / "include" / "top.h", tmp_path / "x.h")
    assert not remote.options.system_cpp
    assert mine.name == "mine" and mine.filename == "mine.py" and mine.options.system_cpp
    assert mine.options.defines == {"A": "1", "B": "2"}


def test_default_module_name_is_an_identifier(tmp_path: Path) -> None:
    config = parse_config({"output": "o", "modules": [{"source": "my-proto.x"}]}, tmp_path)
    assert config.modules[0].name == "my_proto"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"modules": [{"source": "a.x"}]}, "needs 'output'"),
        ({"output": "o"}, "at least one [[tool.xdrgen.modules]]"),
        ({"output": "o", "modules": [{"name": "a"}]}, "#1: needs 'source'"),
        ({"output": "o", "modules": [{"source": "a.x", "name": "not-valid"}]}, "must be a Python identifier"),
        ({"output": "o", "modules": [{"source": "a.x"}, {"source": "b/a.x"}]}, "already used by entry #1"),
        ({"output": "o", "modules": [{"source": "a.x", "sources": "b"}]}, "unknown key(s) sources"),
        ({"output": "o", "outputs": "p", "modules": [{"source": "a.x"}]}, "unknown key(s) outputs"),
        ({"output": "o", "modules": [{"source": "a.x", "defines": ["A"]}]}, "'defines' must be a table"),
        (
            {"output": "o", "modules": [{"source": "a.x", "include-dirs": "inc"}]},
            "'include-dirs' must be a list",
        ),
        ({"output": "o", "modules": [{"source": "a.x", "cpp": "yes"}]}, "'cpp' must be true or false"),
    ],
)
def test_bad_tables_are_clear_errors(tmp_path: Path, table: dict[str, object], message: str) -> None:
    with pytest.raises(XdrgenError) as info:
        parse_config(table, tmp_path, "pyproject.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("error: pyproject.toml")


def test_missing_table_and_file(tmp_path: Path) -> None:
    with pytest.raises(XdrgenError, match="no such file"):
        load_config(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(XdrgenError, match=r"no \[tool.xdrgen\] table"):
        load_config(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.xdrgen\n")
    with pytest.raises(XdrgenError, match="not valid TOML"):
        load_config(tmp_path)


def test_portable_paths(tmp_path: Path) -> None:
    root = tmp_path / "a" / "proj"
    assert portable_path(root / "proto" / "x.x", root) == "proto/x.x"
    assert portable_path(tmp_path / "b" / "x.x", root) == "../../b/x.x"
    # A system header stays absolute: a moved checkout still finds it.
    assert portable_path(Path("/usr/include/libvirt/libvirt.h"), root) == "/usr/include/libvirt/libvirt.h"
