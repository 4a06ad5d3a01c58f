"""Generate a .x file (and the .x files it imports) into a throwaway package and
import it: how ``xdrgen decode`` and ``xdrgen dissect`` get codecs and tables."""

from __future__ import annotations

import importlib
import shutil
import sys
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from xdrgen.diagnostics import error
from xdrgen.frontend.options import FrontendOptions
from xdrgen.generator.names import module_name_for


def load_generated(source: Path, options: FrontendOptions) -> ModuleType:
    """The generated module for ``source``, imported; raises ``XdrgenError`` for bad .x."""
    try:
        from xdrgen.generator import generate_file
    except ImportError:  # pragma: no cover - only while the generator is being written
        raise error("this xdrgen has no code generator (xdrgen.generator.generate_file)") from None
    if not source.is_file():
        raise error(f"{source}: no such .x file")
    scratch = Path(tempfile.mkdtemp(prefix="xdrgen-load-"))
    package = f"_xdrgen_loaded_{uuid.uuid4().hex}"
    try:
        target = scratch / package
        target.mkdir()
        (target / "__init__.py").write_text("")
        for index, imported in enumerate(options.imports):
            # An imported file may use the ones listed before it, never itself.
            own = replace(options, imports=options.imports[:index])
            generate_file(imported, target, module_name=None, options=own, use_cache=False)
        name = module_name_for(source.stem)
        generate_file(source, target, module_name=name, options=options, use_cache=False)
        sys.path.insert(0, str(scratch))
        try:
            module = importlib.import_module(f"{package}.{name}")
        finally:
            sys.path.remove(str(scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return module
