"""A union type's own functions inline as deep in both directions (one plan).

tests/xfiles/union_inline_depth.x: a union whose arms hold structs that hold
structs.  Its encoder and decoder now inline the same levels; before the
marshalling plan, the decoder stopped one level earlier than the encoder.  The
file is also in tests/test_differential_rpcgen.py (against rpcgen's C); here it
goes through round trips, truncations and encode fuzzing.
"""

from __future__ import annotations

from pathlib import Path

from test_generate_encode_fuzz import run_all_types as encode_fuzz
from test_generate_roundtrip import run_all_types as roundtrip
from test_runtime_xdr_truncation import run_all_types as truncations
from xdrgen.generator import generate_source

X_FILE = Path(__file__).with_name("xfiles") / "union_inline_depth.x"


def test_both_directions_inline_the_arms_two_levels_deep() -> None:
    text, _ = generate_source(X_FILE, module_name="depth")
    encoder = text[text.index("def _enc_holder(") : text.index("def _dec_holder(")]
    decoder = text[text.index("def _dec_holder(") : text.index("def _enc_nested(")]
    # outer and mid are inlined in both; leaf (a third level) is called in both.
    for body, call in ((encoder, "_enc_leaf("), (decoder, "_dec_leaf(")):
        assert "_outer(" not in body and "_mid(" not in body
        assert call in body


def test_round_trips_truncations_and_encode_fuzzing() -> None:
    roundtrip(X_FILE, 60)
    truncations(X_FILE, 40)
    assert encode_fuzz(X_FILE, 40) > 100
