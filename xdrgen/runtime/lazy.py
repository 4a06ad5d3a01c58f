"""Runtime modules a generated module imports only when it first uses them.

A generated module that has clients or servers needs a transport runtime
(``xdrgen.runtime.virnet``, ``.guestfs``, ``.oncrpc``: sockets, threading,
asyncio).  A program that imports the module only to marshal must not pay for
them, so the generated code binds each runtime module it uses to a
``LazyModule`` (made by ``lazy``) instead of importing it::

    if _TYPE_CHECKING:
        from xdrgen.runtime.virnet import sync as _virnet_sync
    else:
        _virnet_sync = _lazy("xdrgen.runtime.virnet.sync", globals(), "_virnet_sync")

Type checkers see the real module.  At run time the first attribute read
imports the module and rebinds the global to it, so every later read is an
ordinary module attribute read: no per-call cost once loaded.  Module-level
code of a generated module never reads these names (only function bodies
do), which is what keeps the import lean.

This module imports nothing but ``sys`` and ``typing`` (which the codecs need anyway).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType


class LazyModule:
    """Stands for the module ``name`` in ``namespace[alias]`` until an attribute is read."""

    __slots__ = ("_name", "_namespace", "_alias")

    def __init__(self, name: str, namespace: dict[str, Any], alias: str) -> None:
        self._name = name
        self._namespace = namespace
        self._alias = alias

    def load(self) -> ModuleType:
        """Import the module and put it in place of this stand-in; returns it."""
        __import__(self._name)
        module = sys.modules[self._name]
        # Only replace ourselves: a caller may have rebound the name meanwhile.
        if self._namespace.get(self._alias) is self:
            self._namespace[self._alias] = module
        return module

    def __getattr__(self, attribute: str) -> object:
        return getattr(self.load(), attribute)

    def __repr__(self) -> str:
        return f"<module {self._name!r} (not imported yet)>"


def lazy(name: str, namespace: dict[str, Any], alias: str) -> Any:
    """A ``LazyModule`` for ``name`` bound as ``namespace[alias]``.

    Typed ``Any`` so the run-time branch type-checks against the module the
    ``TYPE_CHECKING`` branch imported under the same name.
    """
    return LazyModule(name, namespace, alias)


__all__ = ["LazyModule", "lazy"]
