"""Differential tests: generated Python against rpcgen's C, byte for byte.

For every type of protocols/demo.x, libvirt's remote_protocol.x,
guestfs_protocol.x and each .x of the Debian corpus (tests/corpus.py, test ids
are the file names):

* valid encodings (tests/xdr_values.py, drawn from the model) go through rpcgen's
  C (decode + re-encode must give the same bytes: the strategy is right and the
  encoding canonical) and through the generated module (``decode`` then
  ``encode`` must give the same bytes, from bytes, bytearray and memoryview);
* damaged encodings (truncated, extended, flipped, huge lengths) must be
  accepted and rejected alike.  Where rpcgen's C is more lenient than our strict
  decoder, the input is classified by ``xdr_values.Scanner`` (itself checked
  against rpcgen on every input) and the difference must be one of those listed
  in docs/compatibility.md; tests/test_differential_deviations.py pins each one.

The rules themselves live in tests/reference/rules.py, shared with the schema
fuzzer (tests/schemafuzz).

Examples are derandomized so CI is reproducible.  Failures are collected over all
types of a protocol and reported together.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from corpus import CORPUS
from reference.harness import ProtocolUnderTest, session_protocol
from reference.rules import check_damaged, check_hostile_lengths, check_valid_encoding
from xdr_values import Encodings, Scanner, mutations

#: Examples per type: small for the ~1400 upstream types, more for demo.x and
#: for the ~270 types of the Debian corpus.
EXAMPLES = {"demo": 60, "libvirt": 6, "guestfs": 6}
CORPUS_EXAMPLES = 25
SCALE = float(os.environ.get("XDRGEN_DIFF_SCALE", "1"))


def _settings(protocol: str) -> settings:
    phases = [Phase.explicit, Phase.generate]
    if os.environ.get("XDRGEN_DIFF_SHRINK") == "1":
        phases.append(Phase.shrink)
    return settings(
        max_examples=max(1, int(EXAMPLES.get(protocol, CORPUS_EXAMPLES) * SCALE)),
        derandomize=True,
        database=None,
        deadline=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
    )


#: tests/xfiles/ files for the rpcgen extensions of issue 10 (test_rpcgen_extensions.py).
EXTENSION_FILES = [
    "xfiles/passthrough_anywhere.x",
    "xfiles/rpc_views.x",
    "xfiles/proc_params.x",
    "xfiles/zero_length.x",
    "xfiles/rpc_h_constants.x",
    "xfiles/mypy_shapes.x",
]
#: tests/xfiles/ files for the marshalling plan (test_union_inline_depth.py).
PLAN_FILES = ["xfiles/union_inline_depth.x"]

# One generated module and one reference per protocol, per session.
PROTOCOLS = [
    "demo",
    "libvirt",
    "guestfs",
    *EXTENSION_FILES,
    *PLAN_FILES,
    *(entry.name for entry in CORPUS),
]


@pytest.fixture(params=PROTOCOLS)
def protocol(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ProtocolUnderTest:
    return session_protocol(request.param, tmp_path_factory)


# -- checks ------------------------------------------------------------------------


def _for_every_type(
    protocol: ProtocolUnderTest, check: Callable[[str], None], *, limit: int = 15
) -> None:
    """Run ``check`` for each type; report every failing type together."""
    failures: list[str] = []
    for type_name in protocol.type_names:
        try:
            check(type_name)
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            failures.append(f"{type_name}: {type(exc).__name__}: {exc}")
    if failures:
        shown = "\n\n".join(failures[:limit])
        pytest.fail(
            f"{len(failures)} of {len(protocol.type_names)} {protocol.name} types fail:\n\n{shown}",
            pytrace=False,
        )


def test_every_model_type_has_an_rpcgen_routine(protocol: ProtocolUnderTest) -> None:
    # rpcgen writes xdr_<T> for each typedef, struct, union and enum; -N adds
    # <proc>_<vers>_argument structs of its own, which the model does not have.
    # The RPC library's own types the model has (netobj) are in the reference's
    # table with the library's routines.
    model_types = set(protocol.model.types)
    rpcgen_types = {
        name for name in protocol.reference.type_names if not name.endswith("_argument")
    }
    assert model_types == rpcgen_types


def test_valid_encodings_roundtrip_identically(protocol: ProtocolUnderTest) -> None:
    encodings = Encodings(protocol.model)

    def check(type_name: str) -> None:
        codec = protocol.codec(type_name)

        @_settings(protocol.name)
        @given(encodings.of(type_name))
        def roundtrip(data: bytes) -> None:
            check_valid_encoding(protocol.reference, codec, type_name, data)

        roundtrip()

    _for_every_type(protocol, check)


def test_damaged_encodings_accepted_and_rejected_alike(
    protocol: ProtocolUnderTest,
) -> None:
    encodings = Encodings(protocol.model)
    scanner = Scanner(protocol.model)

    def check(type_name: str) -> None:
        codec = protocol.codec(type_name)

        @_settings(protocol.name)
        @given(mutations(encodings.of(type_name)))
        def agree(data: bytes) -> None:
            check_damaged(protocol.reference, codec, scanner, type_name, data)

        agree()

    _for_every_type(protocol, check)


def test_hostile_lengths_rejected_without_allocating(
    protocol: ProtocolUnderTest,
) -> None:
    """A 4 GiB length on its own: both sides refuse, ours with a typed error at once."""
    scanner = Scanner(protocol.model)

    def check(type_name: str) -> None:
        check_hostile_lengths(
            protocol.reference, protocol.codec(type_name), scanner, type_name
        )

    _for_every_type(protocol, check)
