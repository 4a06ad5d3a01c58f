"""Where the generator's templates live (checkout or installed wheel)."""

from __future__ import annotations

from pathlib import Path


def template_dir() -> Path:
    """``templates/`` inside the package (wheel) or beside it (checkout)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / "module.py.j2").is_file():
            return candidate
    raise FileNotFoundError("xdrgen templates directory not found")
