"""Generation as a build step: ``[tool.xdrgen]`` config, manifest, incremental build, drift check."""

from xdrgen.build.config import ModuleSpec, ProjectConfig, load_config
from xdrgen.build.incremental import BuildReport, Staleness, build_project, check_project

__all__ = [
    "BuildReport",
    "ModuleSpec",
    "ProjectConfig",
    "Staleness",
    "build_project",
    "check_project",
    "load_config",
]
