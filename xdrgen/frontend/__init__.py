"""The front end: source -> preprocess -> lex/parse -> syntax tree -> resolved model."""

from __future__ import annotations

from pathlib import Path

from xdrgen.frontend.options import FrontendOptions
from xdrgen.model import XdrModule

__all__ = ["FrontendOptions", "load"]


def load(path: Path, options: FrontendOptions | None = None) -> XdrModule:
    """Read, parse and resolve one .x file; raises ``XdrgenError`` with diagnostics."""
    from xdrgen.frontend.pipeline import load_module

    return load_module(Path(path), options or FrontendOptions())
