"""Integer constants read from C headers (#define and enum members)."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xdrgen.diagnostics import Position, XdrgenError
from xdrgen.frontend.cheaders import HeaderConstants, read_constants

HAVE_GCC = shutil.which("gcc") is not None


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def values_computed_by_gcc(
    tmp_path: Path, header: Path, names: list[str], flags: list[str] = []
) -> dict[str, int]:
    """What the C compiler says each name is: the independent oracle."""
    program = tmp_path / "print_constants.c"
    lines = [
        "#include <stdio.h>",
        "#include <stdint.h>",
        f'#include "{header}"',
        "int main(void) {",
    ]
    lines += [f'printf("%s %lld\\n", "{name}", (long long)({name}));' for name in names]
    lines.append("return 0; }")
    program.write_text("\n".join(lines) + "\n")
    binary = tmp_path / "print_constants"
    subprocess.run(["gcc", "-w", *flags, "-o", str(binary), str(program)], check=True)
    output = subprocess.run(
        [str(binary)], check=True, capture_output=True, text=True
    ).stdout
    return {line.split()[0]: int(line.split()[1]) for line in output.splitlines()}


# --- libvirt ----------------------------------------------------------------------------------


def test_libvirt_constants_the_protocol_needs(libvirt_header: Path) -> None:
    constants = read_constants([libvirt_header])
    values = constants.values
    assert values["VIR_UUID_BUFLEN"] == 16
    assert values["VIR_SECURITY_MODEL_BUFLEN"] == 257
    assert values["VIR_SECURITY_LABEL_BUFLEN"] == 4097
    assert values["VIR_SECURITY_DOI_BUFLEN"] == 257
    typed = ["INT", "UINT", "LLONG", "ULLONG", "DOUBLE", "BOOLEAN", "STRING"]
    assert [values[f"VIR_TYPED_PARAM_{t}"] for t in typed] == [1, 2, 3, 4, 5, 6, 7]
    assert values["VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM"] == 1
    assert values["VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM"] == 1
    assert values["VIR_DOMAIN_NOSTATE"] == 0
    assert values["VIR_DOMAIN_RUNNING"] == 1
    assert "VIR_DOMAIN_LAST" not in values  # behind #ifdef VIR_ENUM_SENTINELS
    base = libvirt_header.parent
    assert constants.files[0] == libvirt_header
    assert base / "libvirt-host.h" in constants.files
    assert base / "libvirt-common.h" in constants.files
    assert not any(
        "sys/types.h" in str(f) for f in constants.files
    )  # system header skipped
    origin = constants.origins["VIR_UUID_BUFLEN"]
    assert origin.file == str(base / "libvirt-host.h")
    source_line = Path(origin.file).read_text().split("\n")[origin.line - 1]
    assert source_line[origin.col - 1 :].startswith("VIR_UUID_BUFLEN")


@pytest.mark.skipif(
    not HAVE_GCC, reason="gcc is not installed: no compiler to check values against"
)
def test_every_libvirt_value_matches_what_gcc_computes(
    libvirt_header: Path, tmp_path: Path
) -> None:
    values = read_constants([libvirt_header]).values
    assert len(values) > 700
    assert values_computed_by_gcc(tmp_path, libvirt_header, list(values)) == values


@pytest.mark.skipif(
    not HAVE_GCC, reason="gcc is not installed: no preprocessor output to compare with"
)
def test_no_libvirt_enum_member_is_missed(libvirt_header: Path) -> None:
    """Every enumerator gcc sees in the preprocessed headers is found."""
    import re

    expanded = subprocess.run(
        ["gcc", "-E", "-P", "-"],
        input=f'#include "{libvirt_header}"\n',
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    members = {
        re.match(r"\w+", part.strip()).group()  # type: ignore[union-attr]
        for body in re.findall(r"enum\s*\w*\s*\{(.*?)\}", expanded, re.S)
        for part in body.split(",")
        if part.strip()
    }
    assert len(members) > 500
    assert members - set(read_constants([libvirt_header]).values) == set()


# --- synthetic headers ---------------------------------------------------------------------------


SYNTHETIC = """\
/* A header with "quotes" { and braces } in comments */
#ifndef SYNTH_H
# define SYNTH_H
#include <stdio.h>
#include "sibling.h"

#define PLAIN 42
#define HEX 0x10
#define OCT 017
#define SUFFIXED 1ULL
#define SHIFTED (1 << 4)
#define UNSIGNED_TOP (1U << 31)
#define CASTED ((int)0xFFFFFFFF)
#define CAST_U64 ((uint64_t)1 << 40)
#define NEGATIVE (-5)
#define FROM_EARLIER (PLAIN * 2 + SIBLING_VALUE)
#define FROM_ENUM (B_COLOR + 100)
#define COMPLEMENT (~0U)
#define CONT 1 + \\
    2
#define STRING "text { with brace"
#define FLOATING 1.5
#define FUNCTION(x) ((x) + 1)
#define USES_FUNCTION FUNCTION(2)
#define EMPTY
#define KEYWORD extern
#define UNKNOWN_NAME (NOT_DEFINED_ANYWHERE + 1)
#define UNDONE 5
#undef UNDONE

typedef enum {
    A_COLOR,                 /* 0 */
    B_COLOR,
    C_COLOR = 10,
    D_COLOR,
    E_COLOR = C_COLOR << 1,
    F_COLOR = PLAIN + HEX, /* , } tricky comment */
    G_COLOR = 'A',
#ifdef SENTINELS
    COLOR_LAST
#endif
} color;

enum flags { FLAG_A = 1 << 0, FLAG_B = 1 << 1, FLAG_AB = FLAG_A | FLAG_B, };

enum { ANON = -3, ANON_NEXT };

enum with_attr {
    OLD_NAME __attribute__((deprecated)) = 7,
    NEW_NAME,
};

struct s { int x; char *text; };
int function_prototype(enum flags f, const char *s);
static const char *table[] = { "}", "{", "enum { NOT_REAL = 1 }" };
enum flags variable_of_enum_type;

#if PLAIN > 40 && defined(SYNTH_H)
#define CONDITIONAL_TRUE 1
#else
#define CONDITIONAL_FALSE 1
#endif

#if 0
#define NEVER 1
enum { NEVER_MEMBER = 5 };
#elif HEX == 16
#define ELIF_TAKEN 2
#endif

#if FUNCTION(1) > 1
#define AFTER_UNEVALUABLE_IF 1
#endif

#endif
"""


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    write(tmp_path, "sibling.h", "#define SIBLING_VALUE 3\n")
    return write(tmp_path, "synth.h", SYNTHETIC)


def test_synthetic_header_values(synthetic: Path) -> None:
    values = read_constants([synthetic]).values
    expected = {
        "SIBLING_VALUE": 3,
        "PLAIN": 42,
        "HEX": 16,
        "OCT": 15,
        "SUFFIXED": 1,
        "SHIFTED": 16,
        "UNSIGNED_TOP": 2147483648,
        "CASTED": -1,
        "CAST_U64": 1 << 40,
        "NEGATIVE": -5,
        "FROM_EARLIER": 87,
        "FROM_ENUM": 101,
        "COMPLEMENT": 4294967295,
        "CONT": 3,
        "A_COLOR": 0,
        "B_COLOR": 1,
        "C_COLOR": 10,
        "D_COLOR": 11,
        "E_COLOR": 20,
        "F_COLOR": 58,
        "G_COLOR": 65,
        "FLAG_A": 1,
        "FLAG_B": 2,
        "FLAG_AB": 3,
        "ANON": -3,
        "ANON_NEXT": -2,
        "OLD_NAME": 7,
        "NEW_NAME": 8,
        "CONDITIONAL_TRUE": 1,
        "ELIF_TAKEN": 2,
    }
    assert values == expected


@pytest.mark.skipif(
    not HAVE_GCC, reason="gcc is not installed: no compiler to check values against"
)
def test_synthetic_values_match_gcc(synthetic: Path, tmp_path: Path) -> None:
    values = read_constants([synthetic]).values
    assert values_computed_by_gcc(tmp_path, synthetic, list(values)) == values


def where(text: str, file: Path, needle: str) -> Position:
    """Position of the first occurrence of ``needle`` in ``text``."""
    before = text[: text.index(needle)]
    return Position(
        str(file), before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
    )


def test_origins_and_files(synthetic: Path) -> None:
    constants = read_constants([synthetic])
    assert constants.files == (synthetic, synthetic.parent / "sibling.h")
    assert constants.origins["PLAIN"] == where(SYNTHETIC, synthetic, "PLAIN 42")
    assert constants.origins["PLAIN"] == Position(str(synthetic), 7, 9)
    assert constants.origins["SIBLING_VALUE"] == Position(
        str(synthetic.parent / "sibling.h"), 1, 9
    )
    assert constants.origins["CONT"] == where(SYNTHETIC, synthetic, "CONT 1")
    assert constants.origins["C_COLOR"] == where(SYNTHETIC, synthetic, "C_COLOR = 10")
    assert constants.origins["FLAG_B"] == where(SYNTHETIC, synthetic, "FLAG_B =")
    assert list(constants.values)[:3] == ["PLAIN", "HEX", "OCT"]  # file order


def test_includes_through_the_parent_directory_and_include_dirs(tmp_path: Path) -> None:
    write(
        tmp_path,
        "inc/proj/main.h",
        "#include <proj/part.h>\n#include <extra.h>\n#include <missing.h>\n",
    )
    write(tmp_path, "inc/proj/part.h", "#define PART 1\n")
    write(tmp_path, "elsewhere/extra.h", "enum { EXTRA = 2 };\n")
    write(tmp_path, "inc/stdio.h", "#define NOT_A_SIBLING 1\n")
    main = tmp_path / "inc/proj/main.h"
    constants = read_constants([main], include_dirs=[tmp_path / "elsewhere"])
    assert constants.values == {"PART": 1, "EXTRA": 2}
    assert constants.files == (
        main,
        tmp_path / "inc/proj/part.h",
        tmp_path / "elsewhere/extra.h",
    )


def test_mutual_includes_read_each_header_once(tmp_path: Path) -> None:
    write(tmp_path, "a.h", '#include "b.h"\n#define A 1\n')
    write(tmp_path, "b.h", '#include "a.h"\n#define B 2\n')
    constants = read_constants([tmp_path / "a.h", tmp_path / "b.h"])
    assert constants.values == {"B": 2, "A": 1}
    assert constants.files == (tmp_path / "a.h", tmp_path / "b.h")


def test_missing_header_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(XdrgenError) as caught:
        read_constants([tmp_path / "nope.h"])
    assert (
        str(caught.value)
        == f"error: C header '{tmp_path / 'nope.h'}' not found (given with --constants-from)"
    )


def test_unterminated_constructs_do_not_crash(tmp_path: Path) -> None:
    header = write(
        tmp_path,
        "broken.h",
        "#define GOOD 1\nenum { X = 1, Y\n#define S \"open\nchar c = '\n/* never closed\n#define HIDDEN 2\n",
    )
    # X is a complete enumerator; Y never ends; HIDDEN is inside the open comment.
    assert read_constants([header]).values == {"GOOD": 1, "X": 1}


def test_binary_junk_does_not_crash(tmp_path: Path) -> None:
    rng = random.Random(5531)
    path = tmp_path / "junk.h"
    path.write_bytes(
        bytes(rng.randrange(256) for _ in range(20000)) + b"\n#define AFTER_JUNK 9\n"
    )
    assert read_constants([path]).values.get("AFTER_JUNK") in (
        9,
        None,
    )  # junk may open a comment


_C_PIECES = st.sampled_from(
    [
        "#define ",
        "#if ",
        "#ifdef ",
        "#else",
        "#endif",
        "#elif ",
        "#include ",
        "#undef ",
        "enum",
        "{",
        "}",
        "(",
        ")",
        ",",
        "=",
        ";",
        "A",
        "B",
        "1",
        "0x",
        "<<",
        "/*",
        "*/",
        "//",
        '"',
        "'",
        "\\",
        "\n",
        " ",
        "-",
        "~",
        "(int)",
        "1U",
        "9999999999999999999999",
        "defined",
        "__attribute__",
    ]
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(pieces=st.lists(_C_PIECES, max_size=60))
def test_arbitrary_c_never_crashes(tmp_path: Path, pieces: list[str]) -> None:
    header = tmp_path / "fuzz.h"
    header.write_text("".join(pieces))
    constants = read_constants([header])
    assert isinstance(constants, HeaderConstants)
    assert all(
        isinstance(v, int) and -(1 << 63) <= v < (1 << 64)
        for v in constants.values.values()
    )
