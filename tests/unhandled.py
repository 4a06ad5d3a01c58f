"""Fail any test that leaves an exception unhandled in an asyncio task or callback.

Threads (``threading.excepthook``) and unraisable exceptions (``__del__``,
finalizers) are turned into errors by pytest's own plugins (``filterwarnings``
in pyproject.toml).  asyncio reports a task whose exception nobody retrieved,
and an exception escaping a callback, only through its logger: this module
collects those records so ``conftest.py`` can fail the test that caused them.
"""

from __future__ import annotations

import gc
import logging

#: Messages of asyncio's default exception handler that mean "nobody handled this".
UNHANDLED_MARKERS = (
    "exception was never retrieved",
    "Exception in callback",
    "Unhandled exception",
    "Fatal error",
    "Exception in default exception handler",
)


class AsyncioUnhandled(logging.Handler):
    """Keeps asyncio's error records that report an unhandled exception."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(marker in message for marker in UNHANDLED_MARKERS):
            self.records.append(record)

    def describe(self) -> str:
        lines = []
        for record in self.records:
            lines.append(record.getMessage())
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                lines.append(f"  {type(error).__name__}: {error}")
        return "\n".join(lines)


def collect_garbage() -> None:
    """Run finalizers now, so a never-retrieved task reports inside its own test."""
    gc.collect()
