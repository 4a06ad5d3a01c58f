"""Golden-file comparison; refresh with XDRGEN_UPDATE_GOLDEN=1, never silently."""

from __future__ import annotations

import os
from pathlib import Path

UPDATE = os.environ.get("XDRGEN_UPDATE_GOLDEN") == "1"


def check_golden(path: Path, actual: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"golden file {path} is missing; create it with XDRGEN_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, (
        f"output differs from {path}; if the change is intended, refresh with "
        "XDRGEN_UPDATE_GOLDEN=1 and review the diff"
    )
