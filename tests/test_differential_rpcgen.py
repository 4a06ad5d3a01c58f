"""Differential tests: generated Python against rpcgen's C, byte for byte.

For every type of protocols/demo.x, libvirt's remote_protocol.x,
guestfs_protocol.x and each .x of the Debian corpus (tests/corpus.py, test ids
are the file names):

* valid encodings (tests/xdr_values.py, drawn from the model) go through rpcgen's
  C (decode + re-encode must give the same bytes: the strategy is right and the
  encoding canonical) and through the generated module (``decode`` then
  ``encode`` must give the same bytes, from bytes, bytearray and memoryview),
  on both backends: the compiled engine and pure Python (tests/engine_backends.py);
* damaged encodings (truncated, extended, flipped, huge lengths) must be
  accepted and rejected alike.  Where rpcgen's C is more lenient than our strict
  decoder, the input is classified by ``xdr_values.Scanner`` (itself checked
  against rpcgen on every input) and the difference must be one of those listed
  in docs/compatibility.md; tests/test_differential_deviations.py pins each one.

Examples are derandomized so CI is reproducible.  Failures are collected over all
types of a protocol and reported together.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from itertools import product

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from corpus import CORPUS
from reference.harness import ProtocolUnderTest, session_protocol
from xdr_values import Deviation, Encodings, Scanner, mutations
from xdrgen.runtime.engine import backend

#: Deviations where our decoder accepts what rpcgen accepts and keeps every byte.
OURS_ACCEPTS = frozenset({Deviation.STRING_NUL})

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
    reference = protocol.reference

    def check(type_name: str) -> None:
        codecs = protocol.codecs(type_name)  # the compiled engine and pure Python

        @_settings(protocol.name)
        @given(encodings.of(type_name))
        def roundtrip(data: bytes) -> None:
            theirs = reference.roundtrip(type_name, data)
            assert theirs.decoded and theirs.consumed == len(data), (data.hex(), theirs)
            assert theirs.reencoded == data, ("rpcgen", data.hex(), theirs)
            for codec, buffer in product(codecs, (data, bytearray(data), memoryview(data))):
                value = codec.decode(buffer)
                ours = codec.encode(value)
                assert ours == data, (
                    "xdrgen",
                    backend(codec),
                    type(buffer).__name__,
                    data.hex(),
                    ours.hex(),
                )

        roundtrip()

    _for_every_type(protocol, check)


def test_damaged_encodings_accepted_and_rejected_alike(
    protocol: ProtocolUnderTest,
) -> None:
    from xdrgen.runtime.errors import XdrDecodeError

    encodings = Encodings(protocol.model)
    scanner = Scanner(protocol.model)
    reference = protocol.reference

    def check(type_name: str) -> None:
        codecs = protocol.codecs(type_name)  # the compiled engine and pure Python

        @_settings(protocol.name)
        @given(mutations(encodings.of(type_name)))
        def agree(data: bytes) -> None:
            theirs = reference.roundtrip(type_name, data)
            scan = scanner.scan(type_name, data)
            # The classifier must describe rpcgen's C exactly, or it explains nothing.
            assert scan.accepted == theirs.decoded, (
                "scanner vs rpcgen",
                data.hex(),
                scan,
            )
            kinds = {kind for kind, _ in scan.deviations}
            if scan.accepted:
                assert scan.consumed == theirs.consumed, (
                    "scanner vs rpcgen",
                    data.hex(),
                    scan,
                )
                if not kinds - {
                    Deviation.TRAILING,
                    Deviation.ENUM,
                    Deviation.SIGNALLING_NAN,
                }:
                    assert theirs.reencoded == data[: theirs.consumed], data.hex()

            for codec in codecs:
                try:
                    value = codec.decode(data)
                except XdrDecodeError as error:
                    assert error.offset is not None, f"no offset in {error!r}"
                    assert not scan.canonical and not (
                        scan.accepted and kinds <= OURS_ACCEPTS
                    ), f"xdrgen rejects an input rpcgen takes as is ({error}); {data.hex()}"
                else:
                    assert (
                        scan.accepted
                    ), f"xdrgen accepts bytes rpcgen rejects: {data.hex()}"
                    assert (
                        kinds <= OURS_ACCEPTS
                    ), f"xdrgen accepts non-canonical input ({sorted(kinds)}): {data.hex()}"
                    assert (
                        codec.encode(value) == data
                    ), f"xdrgen ({backend(codec)}) loses bytes of {data.hex()}"

                if scan.accepted and kinds == {Deviation.TRAILING}:
                    # Strict decode rejects what follows the value; the value must match.
                    prefix = data[: scan.consumed]
                    assert codec.encode(codec.decode(prefix)) == theirs.reencoded == prefix

        agree()

    _for_every_type(protocol, check)


def test_hostile_lengths_rejected_without_allocating(
    protocol: ProtocolUnderTest,
) -> None:
    """A 4 GiB length on its own: both sides refuse, ours with a typed error at once."""
    from xdrgen.runtime.errors import XdrDecodeError

    scanner = Scanner(protocol.model)

    def check(type_name: str) -> None:
        for codec, word in product(
            protocol.codecs(type_name), (0xFFFFFFFF, 0x80000000, 0x7FFFFFFC)
        ):
            data = word.to_bytes(4, "big") * 2
            theirs = protocol.reference.roundtrip(type_name, data)
            scan = scanner.scan(type_name, data)
            assert scan.accepted == theirs.decoded
            kinds = {kind for kind, _ in scan.deviations}
            if scan.accepted and kinds <= OURS_ACCEPTS:
                continue  # e.g. two ints: nothing hostile about them
            with pytest.raises(XdrDecodeError):
                codec.decode(data)

    _for_every_type(protocol, check)
