"""Procedure-annotation files (``--annotations``): reading, validation, merging, inputs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from xdrgen.cli import main
from xdrgen.diagnostics import XdrgenError
from xdrgen.frontend import load
from xdrgen.frontend.options import FrontendOptions
from xdrgen.frontend.tomlpos import scan
from xdrgen.model import Deprecation, OptionalArgument, Procedure, XdrModule

REPO = Path(__file__).resolve().parents[1]
DEMO_X = REPO / "protocols" / "demo.x"


def write(tmp_path: Path, text: str, name: str = "notes.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def demo(*annotations: Path) -> XdrModule:
    return load(DEMO_X, FrontendOptions(annotations=tuple(annotations)))


def proc(module: XdrModule, method: str) -> Procedure:
    return next(p for t in module.procedure_tables for p in t.procedures if p.method_name == method)


def rendered_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(XdrgenError) as info:
        demo(path)
    return info.value.render()


def test_positions_of_keys_and_values() -> None:
    text = textwrap.dedent(
        """
        # comment
        [procedures.item_list]
        optargs = ["max_items",
                   'flags']   # second line
        "quoted.key" = { a = 1, b = [2, 3] }

        [[types.t]]
        x = 1
        [[types.t]]
        x = 2
        """
    )
    pos = scan(text, "f.toml")
    assert (pos.key(("procedures", "item_list")).line, pos.key(("procedures", "item_list")).col) == (3, 13)
    assert (pos.value(("procedures", "item_list", "optargs", 1)).line, pos.value(("procedures", "item_list", "optargs", 1)).col) == (5, 12)
    assert pos.key(("procedures", "item_list", "quoted.key")).col == 1
    assert pos.value(("procedures", "item_list", "quoted.key", "b", 1)).col == 33
    assert pos.key(("types", "t", 1, "x")).line == 11
    assert pos.key(("nowhere", "deep")).line == 1  # unknown paths fall back to the file's start


def test_annotations_attach_to_procedures_and_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [procedures.item_list]
        optargs = ["flags"]
        deprecated-by = "item_lookup_by_name"

        [procedures.DEMO_PROC_ITEM_SET_VALUE]   # the constant works too
        optargs = { options = 5 }
        stream = "both"
        stream-arg = 2
        deprecated = "kept for old clients"

        [procedures.item_download]
        stream = "out"                          # the .x says @readstream: 1 already

        [types.demo_item_set_value_args.fields.value]
        call-by-reference = true
        """,
    )
    module = demo(path)
    listing = proc(module, "item_list").annotations
    assert listing.optargs == (OptionalArgument("flags", 0),) and listing.optargs_mask == 1
    assert listing.deprecated == Deprecation("item_lookup_by_name", None)
    assert listing.priority == "high" and listing.generate == "both"  # the .x's own survive
    setter = proc(module, "item_set_value").annotations
    assert setter.optargs == (OptionalArgument("options", 5),) and setter.optargs_mask == 0x20
    assert setter.stream == "both" and setter.readstream == setter.writestream == 2
    assert setter.deprecated == Deprecation(None, "kept for old clients")
    assert proc(module, "item_download").annotations.readstream == 1
    struct = module.types["demo_item_set_value_args"]
    assert [f.annotations.call_by_reference for f in struct.fields] == [False, True, False]  # type: ignore[union-attr]
    assert path in module.inputs


def test_unknown_procedure_is_located_with_a_caret(tmp_path: Path) -> None:
    text = rendered_error(tmp_path, '[procedures.item_lst]\nstream = "out"\n')
    assert text.splitlines() == [
        f"{tmp_path / 'notes.toml'}:1:13: error: unknown procedure 'item_lst': demo.x has no procedure of that name",
        "    [procedures.item_lst]",
        "                ^",
        "  note: did you mean 'item_list'?",
    ]


def test_every_problem_is_reported_with_its_position(tmp_path: Path) -> None:
    text = rendered_error(
        tmp_path,
        """
        [procedures.item_list]
        optargs = ["flags", "max_itemz"]
        stream = "sideways"
        colour = "blue"

        [procedures.item_upload]
        optargs = { flags = 64 }
        deprecated-by = "nothing_like_it"

        [types.demo_item.fields.nope]
        insert = 1

        [other]
        """,
    )
    lines = [line for line in text.splitlines() if ": error: " in line]
    where = [line.split(": error: ")[0].rsplit(":", 2)[1:] for line in lines]
    messages = [line.split(": error: ")[1] for line in lines]
    assert messages == [
        "unknown key 'other' in an annotation file",
        "unknown key 'colour' in procedure 'item_list'",
        "unknown field 'max_itemz': demo_item_list_args has no such field",
        "'stream' must be one of in, out, both",
        "the bit of 'flags' must be an integer from 0 to 63",
        "'deprecated-by' must name another procedure of DEMO",
        "unknown field 'nope': demo_item has no such field",
    ]
    assert where == [["13", "2"], ["4", "1"], ["2", "21"], ["3", "10"], ["7", "21"], ["8", "17"], ["10", "25"]]


def test_bad_toml_is_located(tmp_path: Path) -> None:
    text = rendered_error(tmp_path, '[procedures.item_list]\noptargs = ["flags"\n')
    first = text.splitlines()[0]
    assert first.startswith(f"{tmp_path / 'notes.toml'}:3:1: error: not valid TOML")


@pytest.mark.parametrize(
    ("toml", "message", "note"),
    [
        ('readstream = 2', "'readstream' conflicts with what demo.x already says for 'item_download'",
         "readstream 1 comes from the annotation in"),
        ('stream = "in"', "stream direction 'both' conflicts with 'read'", "'read' comes from the annotation in"),
        ('generate = "none"', "'generate' conflicts", "generate 'both' comes from"),
    ],
)
def test_conflicts_with_the_x_are_errors(tmp_path: Path, toml: str, message: str, note: str) -> None:
    text = rendered_error(tmp_path, f"[procedures.item_download]\n{toml}\n")
    assert message in text and note in text
    assert "demo.x:" in text  # the note says where the .x says it


def test_conflicts_between_two_files_name_the_first(tmp_path: Path) -> None:
    first = write(tmp_path, '[procedures.item_list]\noptargs = ["flags"]\n', "a.toml")
    second = write(tmp_path, '[procedures.item_list]\noptargs = ["max_items"]\n', "b.toml")
    same = write(tmp_path, '[procedures.item_list]\noptargs = ["flags"]\n', "c.toml")
    assert proc(demo(first, same), "item_list").annotations.optargs == (OptionalArgument("flags", 0),)
    with pytest.raises(XdrgenError) as info:
        demo(first, second)
    text = info.value.render()
    assert "b.toml:2:" in text and "a.toml:2" in text and "'optargs' conflicts" in text


def test_member_comment_conflict(tmp_path: Path) -> None:
    text = rendered_error(tmp_path, "[types.demo_item_list_ret.fields.items]\ninsert = 2\n")
    assert "'insert' conflicts with the member comment in demo.x" in text and "the .x says 1" in text


def test_guestfs_stream_rules(tmp_path: Path, guestfs_protocol_x: Path) -> None:
    path = write(tmp_path, '[procedures.upload]\nstream = "both"\n\n[procedures.download]\nstream = "out"\nstream-arg = 3\n')
    with pytest.raises(XdrgenError) as info:
        load(guestfs_protocol_x, FrontendOptions(annotations=(path,)))
    text = info.value.render()
    assert "guestfs transfers go one way" in text
    assert "argument 3 does not exist: the call has 1 argument(s) besides the stream" in text


def test_check_command_reports_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, '[procedures.no_such]\nstream = "out"\n')
    assert main(["check", str(DEMO_X), "--annotations", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "notes.toml:1:13: error: unknown procedure 'no_such'" in err and "Traceback" not in err
    good = write(tmp_path, '[procedures.item_list]\noptargs = ["flags"]\n', "good.toml")
    assert main(["check", str(DEMO_X), "--annotations", str(good)]) == 0


def test_generate_sees_the_annotation_file_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is an input: the manifest cache regenerates when it changes."""
    monkeypatch.setenv("XDRGEN_CACHE_DIR", str(tmp_path / "cache"))
    notes = write(tmp_path, '[procedures.item_list]\ndeprecated = "one"\n')
    out = tmp_path / "out"
    args = ["generate", str(DEMO_X), "-o", str(out), "--annotations", str(notes), "-q"]
    assert main(args) == 0
    first = (out / "demo.py").read_text()
    assert "# Options: --annotations notes.toml" in first
    assert main(args) == 0  # unchanged: a cache hit
    notes.write_text('[procedures.item_list]\ndeprecated = "two"\n')
    from xdrgen.generator import generate_file

    result = generate_file(DEMO_X, out, options=FrontendOptions(annotations=(notes,)))
    assert not result.cached and notes in result.inputs


def test_build_config_and_manifest(tmp_path: Path) -> None:
    from xdrgen.build import build_project, check_project, load_config

    shutil_copy = (tmp_path / "demo.x")
    shutil_copy.write_bytes(DEMO_X.read_bytes())
    write(tmp_path, '[procedures.item_list]\noptargs = ["flags"]\n', "demo.toml")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.xdrgen]\noutput = "gen"\nannotations = "demo.toml"\n\n[[tool.xdrgen.modules]]\nsource = "demo.x"\n'
    )
    config = load_config(tmp_path)
    assert config.modules[0].options.annotations == (tmp_path / "demo.toml",)
    build_project(config)
    manifest = json.loads(next((tmp_path / "gen").glob("*.json")).read_text())
    record = manifest["outputs"]["demo.py"]
    assert record["options"]["annotations"] == ["demo.toml"]
    assert any(name.endswith("demo.toml") for name in record["inputs"])
    assert check_project(config) == []
    (tmp_path / "demo.toml").write_text('[procedures.item_list]\noptargs = ["max_items"]\n')
    stale = check_project(config)
    assert len(stale) == 1 and "demo.toml" in stale[0].reason
    # On the command line too (for every module): the manifest then records both files.
    write(tmp_path, '[procedures.item_upload]\ndeprecated = true\n', "more.toml")
    assert main(["build", "--project", str(tmp_path), "--annotations", str(tmp_path / "more.toml"), "-q"]) == 0
    manifest = json.loads(next((tmp_path / "gen").glob("*.json")).read_text())
    assert manifest["outputs"]["demo.py"]["options"]["annotations"] == ["demo.toml", "more.toml"]
    assert "replaced_by" not in (tmp_path / "gen" / "demo.py").read_text().split("DEMO_PROC_ITEM_UPLOAD")[1][:300]
    assert "deprecated=True" in (tmp_path / "gen" / "demo.py").read_text().split('"DEMO_PROC_ITEM_UPLOAD"')[1][:400]
    (tmp_path / "pyproject.toml").write_text(
        '[tool.xdrgen]\noutput = "gen"\nannotations = 3\n\n[[tool.xdrgen.modules]]\nsource = "demo.x"\n'
    )
    with pytest.raises(XdrgenError, match="'annotations' must be a path or a list of paths"):
        load_config(tmp_path)


def test_a_two_way_stream_reaches_the_libvirt_stubs(tmp_path: Path) -> None:
    from xdrgen.generator import generate_source

    notes = write(tmp_path, '[procedures.item_set_value]\nstream = "both"\nstream-arg = 1\n')
    text, _ = generate_source(DEMO_X, options=FrontendOptions(annotations=(notes,)))
    # The field-taking method hands its args to the _with twin, which makes the call.
    start = text.index("    def item_set_value_with(")
    assert "direction=_virnet.BOTH if two_way else _virnet.BOTH" in text[start : text.index("\n\n", start)]
    assert '6: ("item_set_value", _DEMO_AD6, None, 3),' in text  # the server dispatches it both ways
