"""The built-in preprocessor (and the --cpp mode): directives, expressions, positions."""

from __future__ import annotations

import os
import random
import re
import shutil
import sys
from pathlib import Path

import pytest

from xdrgen.diagnostics import XdrgenError
from xdrgen.frontend.preprocess import (
    DEFAULT_PREDEFINED,
    PreprocessedSource,
    preprocess,
)

RPCSVC = Path("/usr/include/rpcsvc")
HAVE_CPP = shutil.which("cpp") is not None
needs_cpp = pytest.mark.skipif(
    not HAVE_CPP, reason="the system C preprocessor 'cpp' is not installed"
)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def body_lines(result: PreprocessedSource) -> list[str]:
    """Output lines without the leading line marker."""
    lines = result.text.split("\n")
    assert lines[0].startswith("# 1 "), lines[0]
    assert lines[-1] == ""
    return lines[1:-1]


def run(text: str, **options: object) -> list[str]:
    return body_lines(preprocess(Path("t.x"), text=text, **options))  # type: ignore[arg-type]


def failure(
    text: str, name: str = "t.x", directory: Path | None = None, **options: object
) -> str:
    """The rendered error for a source that must fail (written to disk so the source
    line and caret are rendered too)."""
    path = Path(name) if directory is None else write(directory, name, text)
    with pytest.raises(XdrgenError) as caught:
        preprocess(path, text=None if directory else text, **options)  # type: ignore[arg-type]
    return str(caught.value)


# --- output contract --------------------------------------------------------------------


def test_fast_path_returns_source_unchanged_after_marker() -> None:
    source = "/* doc */\nconst A = 1;\n%#include <x.h>\n\nstruct s { int a; };\n"
    result = preprocess(Path("dir/a.x"), text=source)
    assert result.text == '# 1 "dir/a.x"\n' + source
    assert result.main_file == "dir/a.x"
    assert result.files == (Path("dir/a.x"),)


def test_missing_final_newline_is_added() -> None:
    assert (
        preprocess(Path("a.x"), text="const A = 1;").text == '# 1 "a.x"\nconst A = 1;\n'
    )


def test_real_libvirt_protocol_takes_the_fast_path(remote_protocol_x: Path) -> None:
    source = remote_protocol_x.read_text()
    result = preprocess(remote_protocol_x)
    assert result.text == f'# 1 "{remote_protocol_x}"\n' + source
    assert result.files == (remote_protocol_x,)


def test_directives_and_skipped_lines_become_empty_keeping_lines_one_to_one() -> None:
    source = "a\n#define X 1\n#if 0\nskipped\n#else\nkept\n#endif\nlast\n"
    assert run(source, predefined={}) == ["a", "", "", "", "", "kept", "", "last"]


def test_file_names_in_markers_are_quoted() -> None:
    result = preprocess(Path('we"ird\\name.x'), text="#define A 1\nA\n")
    assert result.text.split("\n")[0] == '# 1 "we\\"ird\\\\name.x"'


# --- macros -----------------------------------------------------------------------------


def test_object_like_macros_are_substituted_in_ordinary_lines() -> None:
    source = "#define N 4\n#define M (N * 2)\nopaque a[M]; int N2; int xN; /* N */ int b<N>;\n"
    assert run(source)[2] == "opaque a[(4 * 2)]; int N2; int xN; /* N */ int b<4>;"


def test_macros_are_not_substituted_in_comments_strings_or_percent_lines() -> None:
    source = (
        "#define N 4\n"
        "/* N starts\n"
        "   N inside */ N\n"
        "\"N\" 'N' N // N\n"
        "%int N;\n"
        " %N\n"
    )
    lines = run(source)
    assert lines[1:] == [
        "/* N starts",
        "   N inside */ 4",
        "\"N\" 'N' 4 // N",
        "%int N;",
        " %4",
    ]


def test_self_referential_macro_expands_once() -> None:
    assert run("#define A A + 1\n#define B C\n#define C B\nA B\n")[3] == "A + 1 B"


def test_many_macros_are_all_substituted() -> None:
    """Past the prefilter's size every identifier is looked up instead."""
    defines = "".join(f"#define M{i} {i}\n" for i in range(300))
    uses = " ".join(f"M{i}" for i in range(0, 300, 7))
    assert (
        run(defines + uses + " x /* M1 */\n")[-1]
        == " ".join(str(i) for i in range(0, 300, 7)) + " x /* M1 */"
    )


def test_crlf_line_endings() -> None:
    source = "#define N 2\r\n#if N == 2 \r\nyes\r\n#endif\r\nint a[N];\r\n"
    assert run(source) == ["", "", "yes\r", "", "int a[2];\r"]


def test_undef_removes_a_macro() -> None:
    assert run("#define N 4\nN\n#undef N\nN\n")[1:4:2] == ["4", "N"]


def test_defines_and_predefined_symbols() -> None:
    source = "#ifdef RPC_XDR\nxdr\n#endif\n#ifdef RPC_HDR\nhdr\n#endif\nV\n"
    assert run(source) == ["", "xdr", "", "", "", "", "V"]
    assert DEFAULT_PREDEFINED == {"RPC_XDR": "1"}
    assert run(source, predefined={"RPC_HDR": "1"}) == ["", "", "", "", "hdr", "", "V"]
    assert run(source, predefined={}, defines={"V": "7"})[-1] == "7"


def test_defines_override_predefined() -> None:
    assert run("#if RPC_XDR == 2\nyes\n#endif\n", defines={"RPC_XDR": "2"})[1] == "yes"


def test_invalid_define_name_is_an_error() -> None:
    assert "cannot define '1X': not an identifier" in failure("", defines={"1X": "1"})


# --- conditionals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "1 + 2 * 3 == 7",
        "(1 + 2) * 3 == 9",
        "0x10 == 16 && 010 == 8 && 10u == 10 && 7UL == 7 && 0xffLL == 255",
        "-1 < 0",
        "-1 > 0u",  # usual arithmetic conversions: -1 becomes unsigned
        "~0 == -1",
        "(~0u >> 63) == 1",  # #if arithmetic is 64-bit
        "-7 / 2 == -3 && -7 % 2 == -1",  # C truncates toward zero
        "1 << 40 == 0x10000000000",
        "(-8 >> 1) == -4",
        "!0 && !!5 == 1",
        "(5 & 3) == 1 && (5 | 3) == 7 && (5 ^ 3) == 6",
        "1 ? 2 : 3",
        "0 ? 1 : 0 ? 1 : 2",
        "!(0 && (1 / 0))",  # unevaluated operands may divide by zero
        "1 || (1 / 0)",
        "UNDEFINED == 0",
        "defined FLAG && defined(FLAG) && !defined OTHER",
        "VALUE == 3 && TWICE == 6",
        "'a' == 97 && '\\n' == 10",
        "3 >= 3 && 3 <= 3 && 2 != 3 && 4 > 3",
    ],
)
def test_if_expressions_are_true(expression: str) -> None:
    source = f"#define FLAG\n#define VALUE 3\n#define TWICE (VALUE * 2)\n#if {expression}\nyes\n#else\nno\n#endif\n"
    assert "yes" in run(source)


def test_if_results_agree_with_the_system_cpp_on_random_expressions(
    tmp_path: Path,
) -> None:
    """An independent oracle: cpp evaluates the same 400 generated expressions."""
    if not HAVE_CPP:
        pytest.skip("the system C preprocessor 'cpp' is not installed")
    rng = random.Random(4506)
    binary = [
        "+",
        "-",
        "*",
        "/",
        "%",
        "<<",
        ">>",
        "<",
        ">",
        "<=",
        ">=",
        "==",
        "!=",
        "&",
        "|",
        "^",
        "&&",
        "||",
    ]

    def expr(depth: int) -> str:
        if depth == 0 or rng.random() < 0.3:
            choice = rng.random()
            if choice < 0.15:
                return rng.choice(["A", "B", "UNDEF", "defined(A)", "defined UNDEF"])
            value = rng.choice(
                [0, 1, 2, 3, 7, 8, 15, 31, 32, 100, 255, 65535, 0x7FFFFFFF, 0xFFFFFFFF]
            )
            literal = rng.choice(
                [
                    str(value),
                    hex(value),
                    oct(value).replace("0o", "0") if value else "0",
                ]
            )
            return literal + rng.choice(["", "", "u", "L", "UL", "LL", "ull"])
        kind = rng.random()
        if kind < 0.15:
            return rng.choice(["-", "~", "!", "+"]) + "(" + expr(depth - 1) + ")"
        if kind < 0.25:
            return f"({expr(depth - 1)} ? {expr(depth - 1)} : {expr(depth - 1)})"
        op = rng.choice(binary)
        right = expr(depth - 1)
        if op in ("/", "%"):
            right = f"(({right}) ? ({right}) : 1)"  # never divide by zero
        if op in ("<<", ">>"):
            right = f"(({right}) & 31)"  # always a valid shift count
        return f"({expr(depth - 1)} {op} {right})"

    expressions = [expr(4) for _ in range(400)]
    source = "#define A 5\n#define B (A - 7)\n" + "".join(
        f"#if {e}\nT{i}\n#else\nF{i}\n#endif\n" for i, e in enumerate(expressions)
    )
    path = write(tmp_path, "exprs.x", source)
    ours = [line for line in body_lines(preprocess(path, predefined={})) if line]
    theirs = [
        line.strip()
        for line in preprocess(path, predefined={}, system_cpp=True).text.split("\n")
        if re.fullmatch(r"\s*[TF][0-9]+\s*", line)
    ]
    assert len(ours) == len(expressions)
    mismatches = [(e, o, t) for e, o, t in zip(expressions, ours, theirs) if o != t]
    assert ours == theirs, mismatches[:5]


def test_elif_else_and_nesting() -> None:
    source = (
        "#define V 2\n"
        "#if V == 1\n"
        "one\n"
        "#elif V == 2\n"
        "  #ifdef MISSING\n"
        "missing\n"
        "  #else\n"
        "two\n"
        "  #endif\n"
        "#elif V == 2\n"
        "again\n"
        "#else\n"
        "other\n"
        "#endif\n"
    )
    assert [line for line in run(source) if line] == ["two"]


def test_ifndef() -> None:
    assert [
        x
        for x in run("#ifndef G\nfirst\n#define G\n#endif\n#ifndef G\nsecond\n#endif\n")
        if x
    ] == ["first"]


def test_skipped_groups_are_not_evaluated_or_checked() -> None:
    source = "#if 0\n#if 1/0\n#bogus\n#define F(x) x\n#error no\n#endif\n#else garbage\nok\n#endif\n"
    assert [line for line in run(source) if line] == ["ok"]


def test_hash_inside_multiline_comment_is_not_a_directive() -> None:
    source = "/* a comment\n#error not a directive\n#define N 1\n*/ N\n"
    assert run(source) == [
        "/* a comment",
        "#error not a directive",
        "#define N 1",
        "*/ N",
    ]


def test_comment_state_is_tracked_inside_skipped_groups() -> None:
    source = "#if 0\n/*\n#endif\n*/\n#endif\nkept\n"
    assert run(source) == ["", "", "", "", "", "kept"]


def test_percent_lines_in_skipped_groups_are_dropped() -> None:
    assert run("#if 0\n%#include <a.h>\n#endif\n%kept\n") == ["", "", "", "%kept"]
    assert run("#ifdef RPC_HDR\n%hdr\n#endif\n", predefined={"RPC_XDR": "1"}) == [
        "",
        "",
        "",
    ]


def test_percent_lines_of_other_rpcgen_views_are_kept_and_tagged() -> None:
    source = (
        "%all\n"  # 1
        "#ifdef RPC_HDR\n"
        "%#define A 1\n"  # 3: header only
        "%#define B (A + \\\n"  # 4, joined with 5 as the lexer reads it
        "  2)\n"
        "struct only_in_the_header { int x; };\n"  # 6: not a % line: ignored
        "#include \"never_read.x\"\n"  # 7: directives of other views are not run
        "#endif\n"
        "#ifndef RPC_HDR\n"
        "%not hdr\n"  # 10: main view (and svc, clnt, tbl)
        "#elif defined(RPC_HDR)\n"
        "%hdr via elif\n"  # 12
        "#else\n"
        "%in no view\n"  # 14
        "#endif\n"
        "#if RPC_SVC || defined(RPC_CLNT)\n"
        "%svc or clnt\n"  # 17
        "#ifdef RPC_CLNT\n"
        "%clnt\n"  # 19
        "#endif\n"
        "#endif\n"
    )
    result = preprocess(Path("t.x"), text=source)
    lines = body_lines(result)
    assert lines[2:5] == ["%#define A 1", "%#define B (A + \\", "  2)"]
    assert lines[5] == lines[6] == lines[13] == ""
    assert (lines[0], lines[9], lines[11], lines[16], lines[18]) == (
        "%all",
        "%not hdr",
        "%hdr via elif",
        "%svc or clnt",
        "%clnt",
    )
    # Keys are indexes in result.text, whose line 0 is the marker: source line n is key n.
    assert dict(result.other_view_lines) == {
        3: ("RPC_HDR",),
        4: ("RPC_HDR",),
        5: ("RPC_HDR",),
        12: ("RPC_HDR",),
        17: ("RPC_SVC", "RPC_CLNT"),
        19: ("RPC_CLNT",),
    }


def test_directive_with_trailing_comment_and_continuation() -> None:
    source = "#define N 1 + \\\n  2 /* a\n  comment */\nN\n#if N == 3 /* yes */\nyes\n#endif /* done */\n"
    assert run(source) == ["", "", "", "1 + 2", "", "yes", ""]


def test_pragma_ident_and_null_directive_are_ignored() -> None:
    assert run('#pragma once\n#ident "x"\n#\nok\n') == ["", "", "", "ok"]


# --- line markers -------------------------------------------------------------------------


def test_existing_line_markers_are_honoured() -> None:
    source = 'a\n# 40 "orig.x"\nb\n#line 7\nc\n#line 9 "other.x"\nd\n'
    assert run(source) == [
        "a",
        '# 40 "orig.x"',
        "b",
        '# 7 "orig.x"',
        "c",
        '# 9 "other.x"',
        "d",
    ]


def test_errors_after_a_line_marker_use_the_marked_position() -> None:
    message = failure('# 100 "gen.x" 2\nok\n#bogus\n')
    assert message.startswith(
        "gen.x:101:1: error: unsupported preprocessing directive '#bogus'"
    )


# --- includes -------------------------------------------------------------------------------


def test_include_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path, "sub/inner.x", "#define N 3\nconst INNER = N;\n")
    write(tmp_path, "sub/outer.x", '#include "inner.x"\nconst OUTER = N;\n')
    main = write(tmp_path, "main.x", '/* top */\n#include "sub/outer.x"\nint x[N];\n')
    result = preprocess(main)
    sub = tmp_path / "sub"
    assert result.text.split("\n") == [
        f'# 1 "{main}"',
        "/* top */",
        f'# 1 "{sub / "outer.x"}" 1',
        f'# 1 "{sub / "inner.x"}" 1',
        "",
        "const INNER = 3;",
        f'# 2 "{sub / "outer.x"}" 2',
        "const OUTER = 3;",
        f'# 3 "{main}" 2',
        "int x[3];",
        "",
    ]
    assert result.files == (main, sub / "outer.x", sub / "inner.x")


def test_include_search_order_and_angle_includes(tmp_path: Path) -> None:
    write(tmp_path, "local/common.x", "local\n")
    write(tmp_path, "inc1/common.x", "inc1\n")
    write(tmp_path, "inc2/only2.x", "inc2\n")
    main = write(
        tmp_path,
        "local/main.x",
        '#include "common.x"\n#include <common.x>\n#include "only2.x"\n',
    )
    dirs = [tmp_path / "inc1", tmp_path / "inc2"]
    lines = [
        line
        for line in body_lines(preprocess(main, include_dirs=dirs))
        if not line.startswith("#")
    ]
    assert lines == ["local", "inc1", "inc2"]


def test_a_file_included_twice_is_listed_once(tmp_path: Path) -> None:
    write(tmp_path, "c.x", "const C = 1;\n")
    main = write(tmp_path, "m.x", '#include "c.x"\n#include "c.x"\n')
    result = preprocess(main)
    assert result.files == (main, tmp_path / "c.x")
    assert result.text.count("const C = 1;") == 2


def test_angle_include_is_not_searched_beside_the_file(tmp_path: Path) -> None:
    write(tmp_path, "c.x", "x\n")
    message = failure("#include <c.x>\n", "m.x", tmp_path)
    assert (
        message.split("\n")[0]
        == f"{tmp_path / 'm.x'}:1:1: error: cannot find include file 'c.x'"
    )
    assert "no -I directories given" in message


def test_missing_include_reports_the_searched_directories(tmp_path: Path) -> None:
    message = failure(
        '\n  #include "nope.x"\n', "m.x", tmp_path, include_dirs=[Path("/nonexistent")]
    )
    assert message.split("\n") == [
        f"{tmp_path / 'm.x'}:2:3: error: cannot find include file 'nope.x'",
        '      #include "nope.x"',
        "      ^",
        f"  note: searched: {tmp_path}, /nonexistent",
    ]


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.x", '#include "b.x"\n')
    write(tmp_path, "b.x", 'const B = 1;\n#include "a.x"\n')
    with pytest.raises(XdrgenError) as caught:
        preprocess(tmp_path / "a.x")
    lines = str(caught.value).split("\n")
    assert (
        lines[0]
        == f"{tmp_path / 'b.x'}:2:1: error: #include cycle: '{tmp_path / 'a.x'}' is already being read"
    )
    assert (
        lines[-1]
        == f"  note: {tmp_path / 'a.x'} -> {tmp_path / 'b.x'} -> {tmp_path / 'a.x'}"
    )


def test_include_through_a_macro(tmp_path: Path) -> None:
    write(tmp_path, "c.x", "c\n")
    main = write(tmp_path, "m.x", '#define FILE "c.x"\n#include FILE\n')
    assert "c" in body_lines(preprocess(main))


def test_including_a_device_is_refused(tmp_path: Path) -> None:
    message = failure('#include "/dev/zero"\n', "m.x", tmp_path)
    assert "cannot find include file '/dev/zero'" in message


# --- errors with exact positions ----------------------------------------------------------


def test_unknown_directive(tmp_path: Path) -> None:
    message = failure("const A = 1;\n  #assert x(y)\n", "u.x", tmp_path)
    assert message.split("\n")[:3] == [
        f"{tmp_path / 'u.x'}:2:3: error: unsupported preprocessing directive '#assert'",
        "      #assert x(y)",
        "      ^",
    ]


def test_function_like_macro(tmp_path: Path) -> None:
    message = failure("#define MAX(a, b) a\n", "f.x", tmp_path)
    assert message.split("\n")[:3] == [
        f"{tmp_path / 'f.x'}:1:9: error: function-like macro 'MAX' is not supported by the built-in preprocessor",
        "    #define MAX(a, b) a",
        "            ^",
    ]


def test_error_directive_reports_its_message(tmp_path: Path) -> None:
    message = failure(
        "#ifdef RPC_XDR\n#error this file needs RPC_HDR\n#endif\n", "e.x", tmp_path
    )
    assert (
        message.split("\n")[0]
        == f"{tmp_path / 'e.x'}:2:1: error: #error this file needs RPC_HDR"
    )


def test_endif_without_if() -> None:
    assert failure("ok\n#endif\n").startswith("t.x:2:1: error: #endif without #if")


def test_else_after_else() -> None:
    message = failure("#if 1\n#else\n#else\n#endif\n")
    assert message.split("\n") == [
        "t.x:3:1: error: #else after #else",
        "  note: the #if group began at t.x:1:1",
    ]


def test_missing_endif_points_at_the_open_group() -> None:
    assert failure("#if 1\n#ifdef X\n#endif\nconst A = 1;\n").startswith(
        "t.x:1:1: error: #if without matching #endif"
    )


def test_expression_errors_point_at_the_culprit(tmp_path: Path) -> None:
    message = failure("#if 1 +\n#endif\n", "x1.x", tmp_path)
    assert (
        message.split("\n")[0]
        == f"{tmp_path / 'x1.x'}:1:8: error: in #if expression: expression ends too early"
    )
    message = failure("#if (1 + 2 3\n#endif\n", "x2.x", tmp_path)
    assert message.split("\n")[:3] == [
        f"{tmp_path / 'x2.x'}:1:12: error: in #if expression: expected ')', found '3'",
        "    #if (1 + 2 3",
        "               ^",
    ]
    assert "t.x:1:7: error: in #if expression: division by zero" in failure(
        "#if 1 / 0\n#endif\n"
    )
    assert (
        "t.x:1:7: error: in #if expression: shift count 64 is out of range"
        in failure("#if 1 << 64\n#endif\n")
    )
    assert "1:4: error: in #if expression: expected an expression" in failure(
        "#if\n#endif\n"
    )
    assert "'defined' must be followed by a macro name" in failure(
        "#if defined(1)\n#endif\n"
    )
    assert "'1.5' is not an integer constant" in failure("#if 1.5\n#endif\n")


def test_unterminated_comment_in_a_directive() -> None:
    assert failure("#define A 1 /* never\nclosed\n").startswith(
        "t.x:1:13: error: unterminated comment"
    )


def test_hostile_expressions_fail_cleanly() -> None:
    assert "is too large" in failure("#if " + "9" * 5000 + "\n#endif\n")
    assert "is too large" in failure("#if 0x1" + "0" * 16 + "\n#endif\n")
    assert "nested too deeply" in failure(
        "#if " + "(" * 5000 + "1" + ")" * 5000 + "\n#endif\n"
    )
    assert "nested too deeply" in failure("#if " + "- " * 5000 + "1\n#endif\n")
    assert "nested too deeply" in failure("#if " + "~" * 5000 + "1\n#endif\n")
    bomb = "".join(f"#define M{i} M{i + 1} M{i + 1}\n" for i in range(40))
    assert "is too large" in failure(bomb + "#if M0\n#endif\n")
    assert "is too large" in failure(bomb + "M0\n")


def test_non_utf8_source_reports_the_byte_position(tmp_path: Path) -> None:
    path = tmp_path / "latin.x"
    path.write_bytes(b"const A = 1;\n/* caf\xe9 */\n")
    with pytest.raises(XdrgenError) as caught:
        preprocess(path)
    assert (
        str(caught.value).split("\n")[0]
        == f"{path}:2:7: error: '{path}' is not valid UTF-8 (byte 0xe9)"
    )


def test_missing_main_file() -> None:
    with pytest.raises(
        XdrgenError, match="cannot read 'no/such.x': not a regular file"
    ):
        preprocess(Path("no/such.x"))


# --- real files -----------------------------------------------------------------------------


def rpcsvc_files() -> list[Path]:
    return sorted(RPCSVC.glob("*.x")) if RPCSVC.is_dir() else []


@pytest.mark.skipif(
    not rpcsvc_files(), reason=f"{RPCSVC} has no .x files (install rpcsvc-proto)"
)
@pytest.mark.parametrize("path", rpcsvc_files(), ids=lambda p: p.name)
def test_every_rpcsvc_file_preprocesses(path: Path) -> None:
    result = preprocess(path)
    out = body_lines(result)
    source_lines = path.read_text().split("\n")[:-1]
    if result.files == (path,):  # without includes, lines stay 1:1
        assert len(out) == len(source_lines)
        for ours, theirs in zip(out, source_lines):
            assert ours in ("", theirs)


@needs_cpp
@pytest.mark.skipif(
    not rpcsvc_files(), reason=f"{RPCSVC} has no .x files (install rpcsvc-proto)"
)
@pytest.mark.parametrize("path", rpcsvc_files(), ids=lambda p: p.name)
def test_builtin_matches_system_cpp_on_rpcsvc_files(path: Path) -> None:
    """cpp collapses blanks between tokens, so compare lines split on whitespace.
    cpp runs in the RPC_XDR view only: leave out the '%' lines of other views."""

    def words(result: PreprocessedSource) -> list[list[str]]:
        return [
            line.split()
            for index, line in enumerate(result.text.split("\n"))
            if line.strip()
            and not line.startswith("# ")
            and index not in result.other_view_lines
        ]

    assert words(preprocess(path)) == words(preprocess(path, system_cpp=True))


@pytest.mark.skipif(
    not (RPCSVC / "nis.x").is_file(), reason=f"{RPCSVC}/nis.x not installed"
)
def test_nis_includes_nis_object() -> None:
    result = preprocess(RPCSVC / "nis.x")
    assert result.files == (RPCSVC / "nis.x", RPCSVC / "nis_object.x")
    assert f'# 1 "{RPCSVC / "nis_object.x"}" 1' in result.text.split("\n")
    # nis.x's RPC_HDR block (C for the header) is not in the RPC_XDR view: it is kept
    # for its '%' lines only, tagged as another view's.
    lines = result.text.split("\n")
    index = lines.index("%#include <rpc/xdr.h>")
    assert result.other_view_lines[index] == ("RPC_HDR",)
    assert "%#include <rpc/xdr.h>" not in preprocess(RPCSVC / "nis.x", predefined={"RPC_XDR": "1"}).text
    assert (
        "%#include <rpc/xdr.h>"
        in preprocess(RPCSVC / "nis.x", predefined={"RPC_HDR": "1"}).text
    )


# --- the system cpp -------------------------------------------------------------------------


@needs_cpp
def test_system_cpp_output_and_files(tmp_path: Path) -> None:
    write(tmp_path, "inc/b.x", "const B = N;\n")
    main = write(tmp_path, "a.x", '/* doc */\n#include "inc/b.x"\n%pass N\nint y[N];\n')
    result = preprocess(main, system_cpp=True, defines={"N": "9"})
    lines = result.text.split("\n")
    assert lines[0] == f'# 1 "{main}"'
    kept = [line for line in lines if line and not line.startswith("# ")]
    assert kept == [
        "/* doc */",
        "const B = 9;",
        "%pass 9",
        "int y[9];",
    ]  # cpp expands in % lines
    assert "stdc-predef" not in result.text and "<built-in>" not in result.text
    assert result.files == (main, tmp_path / "inc/b.x")


@needs_cpp
def test_system_cpp_with_in_memory_text(tmp_path: Path) -> None:
    write(tmp_path, "b.x", "const B = 2;\n")
    main = tmp_path / "virtual.x"
    result = preprocess(
        main, system_cpp=True, text='#include "b.x"\nconst A = RPC_XDR;\n'
    )
    assert result.text.split("\n")[0] == f'# 1 "{main}"'
    assert "const B = 2;" in result.text and "const A = 1;" in result.text


@needs_cpp
def test_system_cpp_failure_is_reported_with_position(tmp_path: Path) -> None:
    main = write(tmp_path, "bad.x", "const A = 1;\n#error stop here\n")
    with pytest.raises(XdrgenError) as caught:
        preprocess(main, system_cpp=True)
    lines = str(caught.value).split("\n")
    assert lines[0] == f"{main}:2:2: error: cpp: #error stop here"
    assert "  note: cpp said:" in lines


def test_system_cpp_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(XdrgenError, match="'cpp' was not found on PATH"):
        preprocess(Path("a.x"), text="x\n", system_cpp=True)


# --- no side effects ------------------------------------------------------------------------


_WRITES: list[str] = []
_WATCHING = [False]


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _WATCHING[0] and event == "open" and len(args) >= 3:
        path, mode, flags = args[0], args[1], args[2]
        writing = isinstance(mode, str) and any(c in mode for c in "wax+")
        if isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            writing = True
        if writing and str(path) != os.devnull:  # subprocess opens it for cpp's stdin
            _WRITES.append(str(path))


sys.addaudithook(_audit)


def test_preprocessing_writes_no_files(tmp_path: Path) -> None:
    write(tmp_path, "inc.x", "const I = 1;\n")
    main = write(tmp_path, "m.x", '#include "inc.x"\n#define N 2\nint a[N];\n')
    before = sorted(p.name for p in tmp_path.rglob("*"))
    _WRITES.clear()
    _WATCHING[0] = True
    try:
        preprocess(main)
        if HAVE_CPP:
            preprocess(main, system_cpp=True)
    finally:
        _WATCHING[0] = False
    assert _WRITES == []
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
