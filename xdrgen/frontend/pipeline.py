"""Runs the front-end stages in order: preprocess, parse, resolve."""

from __future__ import annotations

import re
from pathlib import Path

from xdrgen.diagnostics import Diagnostic, XdrgenError, error
from xdrgen.frontend.options import FrontendOptions
from xdrgen.frontend.parser import parse
from xdrgen.frontend.resolve import Resolver
from xdrgen.model import ImportedModule, XdrModule


_INTEGER = re.compile(r"(-?(?:0[xX][0-9a-fA-F]+|[0-9]+))[uUlL]*")
_OCTAL = re.compile(r"-?0[0-7]+")


def integer_defines(defines: dict[str, str]) -> dict[str, int]:
    """``-D`` values that are integers become constants; others are only cpp symbols."""
    values: dict[str, int] = {}
    for name, text in defines.items():
        match = _INTEGER.fullmatch(text.strip())
        if match:
            values[name] = int(match.group(1), 0) if not _OCTAL.fullmatch(match.group(1)) else int(
                match.group(1), 8
            )
    return values


def external_constants(options: FrontendOptions) -> tuple[dict[str, int], list[Path]]:
    values: dict[str, int] = {}
    files: list[Path] = []
    if options.constants_from:
        from xdrgen.frontend.cheaders import read_constants

        headers = read_constants(list(options.constants_from), include_dirs=list(options.include_dirs))
        values.update(headers.values)
        files.extend(headers.files)
    values.update(integer_defines(options.defines))  # -D wins over headers
    return values, files


def load_module(
    path: Path,
    options: FrontendOptions,
    *,
    _externals: tuple[dict[str, int], list[Path]] | None = None,
    _loading: tuple[Path, ...] = (),
) -> XdrModule:
    if path.is_dir():
        raise error(f"{path}: is a directory, not a .x file")
    if not path.is_file():
        raise error(f"{path}: no such file")
    resolved_path = path.resolve()
    if resolved_path in _loading:
        raise error(f"{path}: import cycle ({' -> '.join(p.name for p in _loading + (path,))})")
    externals, header_files = _externals or external_constants(options)
    try:
        source_bytes = path.read_bytes()
        source_text = source_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte offset {exc.start})") from None
    except OSError as exc:
        raise error(f"{path}: {exc.strerror}") from None
    from xdrgen.frontend.preprocess import preprocess

    pre = preprocess(
        path,
        defines=options.defines,
        include_dirs=list(options.include_dirs),
        system_cpp=options.system_cpp,
        text=source_text,
    )
    imports: list[ImportedModule] = []
    for other in options.imports:
        if other.resolve() == resolved_path:
            continue
        model = load_module(
            other,
            FrontendOptions(
                defines=options.defines,
                constants_from=options.constants_from,
                include_dirs=options.include_dirs,
                system_cpp=options.system_cpp,
            ),
            _externals=(externals, header_files),
            _loading=_loading + (resolved_path,),
        )
        imports.append(ImportedModule(other, module_name_for(other), model))
    spec, _lexer = parse(pre.text, str(path), pre.other_view_lines)
    resolver = Resolver(
        spec,
        source=path,
        source_text=source_bytes,
        external_constants=externals,
        imports=imports,
        inputs=list(pre.files) + header_files + _existing(options.libvirt_api),
    )
    module = resolver.resolve()
    if options.annotations:
        from xdrgen.frontend.annotation_file import apply_annotation_files

        apply_annotation_files(module, options.annotations)
    return module


def module_name_for(path: Path) -> str:
    """Default Python module name for a .x file: its stem, made an identifier."""
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in path.stem)
    return name if name and not name[0].isdigit() else f"x_{name}"


__all__ = ["load_module", "module_name_for", "XdrgenError", "Diagnostic"]


def _existing(paths: tuple[Path, ...]) -> list[Path]:
    """Extra input files the generator reads (``--libvirt-api``); each must exist."""
    for path in paths:
        if not Path(path).is_file():
            raise error(f"{path}: no such file (--libvirt-api)")
    return [Path(p) for p in paths]
