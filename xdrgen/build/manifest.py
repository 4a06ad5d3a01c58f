"""``<output>/.xdrgen-manifest.json``: what each generated module was made from.

For every output it records the sha256 of every input (the .x, its #includes,
the C headers it took constants from, the .x files it imports), the options, the
generator version (for humans) and fingerprint (what decides; see
:func:`xdrgen.generator.cache.generator_fingerprint`), the sha256 of the
output itself and, with ``pyc = true``, of the ``.pyc`` files written for it.  The drift check
compares these to the files on disk without parsing anything.  The JSON is
deterministic (sorted keys, fixed indentation) so it diffs well under review.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdrgen.diagnostics import error
from xdrgen.frontend.options import FrontendOptions

MANIFEST_NAME = ".xdrgen-manifest.json"
#: 2 added ``generator_fingerprint``; format 1 records are read with none (stale).
FORMAT = 2
OLD_FORMATS = (1,)


def sha256_file(path: Path) -> str | None:
    """Hex digest of a file's bytes, or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def portable_path(path: Path, root: Path) -> str:
    """How a path is recorded: relative to the project when it shares a top-level
    directory with it (so a checkout can move), else absolute (system headers)."""
    absolute = Path(os.path.abspath(path))
    root = Path(os.path.abspath(root))
    if (
        len(absolute.parts) > 1
        and len(root.parts) > 1
        and absolute.parts[1] == root.parts[1]
    ):
        return Path(os.path.relpath(absolute, root)).as_posix()
    return absolute.as_posix()


def recorded_path(text: str, root: Path) -> Path:
    path = Path(text)
    return path if path.is_absolute() else Path(os.path.normpath(root / path))


def options_record(
    module_name: str, options: FrontendOptions, root: Path
) -> dict[str, Any]:
    """The options that shape an output, as plain JSON data (paths made portable)."""
    return {
        "module": module_name,
        "defines": dict(sorted(options.defines.items())),
        "constants_from": [portable_path(p, root) for p in options.constants_from],
        "imports": [portable_path(p, root) for p in options.imports],
        "include_dirs": [portable_path(p, root) for p in options.include_dirs],
        "cpp": options.system_cpp,
        "libvirt_api": [portable_path(p, root) for p in options.libvirt_api],
        **(
            {"annotations": [portable_path(p, root) for p in options.annotations]}
            if options.annotations
            else {}
        ),
    }


@dataclass
class OutputRecord:
    source: str
    options: dict[str, Any]
    generator_version: str
    #: Recorded path -> sha256, for every file read to make the output.
    inputs: dict[str, str]
    output_sha256: str
    #: :func:`~xdrgen.generator.cache.generator_fingerprint` of the xdrgen that
    #: generated it; None when read from an old manifest that did not record one.
    generator_fingerprint: str | None = None
    #: The output's ``.pyc`` files xdrgen wrote (``pyc = true``): path relative to
    #: the output directory (``__pycache__/remote.cpython-311.pyc``) -> sha256.
    bytecode: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "options": self.options,
            "generator_version": self.generator_version,
            "generator_fingerprint": self.generator_fingerprint,
            "inputs": dict(sorted(self.inputs.items())),
            "output_sha256": self.output_sha256,
        }
        if self.bytecode:
            data["bytecode"] = dict(sorted(self.bytecode.items()))
        return data


@dataclass
class Manifest:
    #: Output file name (``demo.py``) -> record.
    outputs: dict[str, OutputRecord] = field(default_factory=dict)
    #: Set when the file on disk could not be used as it is (a newer format): why
    #: every output counts as stale.
    unusable: str | None = None

    def dumps(self) -> str:
        data = {
            "format": FORMAT,
            "generator": "xdrgen",
            "outputs": {
                name: self.outputs[name].to_json() for name in sorted(self.outputs)
            },
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def write(self, directory: Path) -> bool:
        """Write if the content changed; returns whether it wrote."""
        path = directory / MANIFEST_NAME
        text = self.dumps()
        try:
            if path.read_text(encoding="utf-8") == text:
                return False
        except OSError:
            pass
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        return True


def read_manifest(directory: Path) -> Manifest:
    """The manifest in ``directory``; an empty one when there is none yet."""
    path = directory / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Manifest()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text)
        layout = data.get("format")
        if layout != FORMAT and layout not in OLD_FORMATS:
            return Manifest(
                unusable=f"the manifest has format {layout!r}, this xdrgen writes {FORMAT}"
            )
        outputs = {
            str(name): OutputRecord(
                source=str(record["source"]),
                options=dict(record["options"]),
                generator_version=str(record["generator_version"]),
                inputs={str(k): str(v) for k, v in record["inputs"].items()},
                output_sha256=str(record["output_sha256"]),
                generator_fingerprint=_optional_str(
                    record.get("generator_fingerprint")
                ),
                bytecode={
                    str(k): str(v) for k, v in record.get("bytecode", {}).items()
                },
            )
            for name, record in data["outputs"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise error(
            f"{path}: not a valid xdrgen manifest ({exc}); delete it to rebuild everything"
        ) from None
    return Manifest(outputs)


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(
            f"generator_fingerprint is {type(value).__name__}, not a string"
        )
    return value
