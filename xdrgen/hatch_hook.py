"""Entry point of the hatchling plugin (``[project.entry-points.hatch] xdrgen``)."""

from __future__ import annotations

from hatchling.plugin import hookimpl

from xdrgen.build.hatch import XdrgenBuildHook


@hookimpl
def hatch_register_build_hook() -> type[XdrgenBuildHook]:
    return XdrgenBuildHook
