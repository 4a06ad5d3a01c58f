"""The error of malformed captures: always says where, in bytes from the start."""

from __future__ import annotations


class WireError(ValueError):
    def __init__(self, problem: str, offset: int) -> None:
        super().__init__(problem)
        self.problem = problem
        #: Byte offset in the captured stream where the problem starts.
        self.offset = offset

    def __str__(self) -> str:
        return f"byte offset {self.offset}: {self.problem}"
