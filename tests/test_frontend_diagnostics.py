"""Exact text of every front-end diagnostic, on small inputs (golden files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from golden_files import check_golden
from xdrgen.cli import main

CASES = Path(__file__).parent / "diagnostics"
WARNING_CASES = ["duplicate_enum_value", "unknown_annotation", "lone_procedure_argument"]
ERROR_CASES = sorted(p.stem for p in CASES.glob("*.x") if p.stem not in WARNING_CASES)


def run_check(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    cwd = os.getcwd()
    os.chdir(CASES)  # diagnostics name files as given: keep them short and stable
    try:
        status = main(["check", f"{name}.x"])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("name", ERROR_CASES)
def test_error_diagnostic(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_check(name, capsys)
    assert status == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith(f"{name}.x:"), err
    check_golden(CASES / f"{name}.expected", err)


@pytest.mark.parametrize("name", WARNING_CASES)
def test_warning_diagnostic(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_check(name, capsys)
    assert status == 0
    assert out.startswith(f"{name}.x: ")
    assert ": warning: " in err
    check_golden(CASES / f"{name}.expected", err)


def test_every_case_has_golden_text() -> None:
    for source in CASES.glob("*.x"):
        assert (CASES / f"{source.stem}.expected").is_file(), source.name


def test_error_names_line_column_and_caret(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_check("missing_semicolon", capsys)
    assert status == 2
    first, source_line, caret = err.splitlines()[:3]
    assert first == "missing_semicolon.x:2:11: error: expected ';' after struct member 'id', found keyword 'string'"
    assert source_line == "        int id"
    # The caret sits just after 'id': column 11 of the source line.
    assert caret.index("^") - 4 == 10
