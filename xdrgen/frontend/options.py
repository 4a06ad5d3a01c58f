"""Options that shape how a .x file is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class FrontendOptions:
    #: ``-D NAME[=VALUE]``: preprocessor symbols, and integer constants for the model.
    defines: dict[str, str] = field(default_factory=dict)
    #: ``--constants-from HEADER``: C headers whose ``#define``s and enum members
    #: supply constants the .x uses but does not define.
    constants_from: tuple[Path, ...] = ()
    #: ``--import OTHER.x``: files whose definitions this one may use.
    imports: tuple[Path, ...] = ()
    #: ``-I DIR``: extra directories for ``#include "..."``.
    include_dirs: tuple[Path, ...] = ()
    #: ``--cpp``: run the system C preprocessor instead of the built-in subset.
    system_cpp: bool = False
    #: ``--libvirt-api XML``: libvirt's API descriptions (libvirt-api.xml), where the
    #: server skeleton takes the API names and error domains of its "not supported"
    #: answers.  Recorded as inputs of the module.
    libvirt_api: tuple[Path, ...] = ()
    #: ``--annotations FILE``: procedure-annotation files (TOML) merged into the model.
    annotations: tuple[Path, ...] = ()
