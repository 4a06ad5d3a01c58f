"""Hostile-input bounds: nothing the preprocessor (or the C header reader) builds may
grow without limit."""

from __future__ import annotations

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_INCLUDE_DEPTH = 200
MAX_EXPANSION_TOKENS = 100_000
MAX_EXPR_DEPTH = 256
MAX_LITERAL_DIGITS = 80
MAX_PREFILTER_NAMES = 64
CPP_TIMEOUT_SECONDS = 120
