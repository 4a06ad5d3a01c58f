"""The differential rules: what rpcgen's C and a generated codec must do with one input.

One place for the checks that tests/test_differential_rpcgen.py runs on upstream
protocols and tests/schemafuzz runs on random schemas.  Each function raises
``AssertionError`` with the input in hex when the two implementations disagree
in a way docs/compatibility.md does not list.  A codec run by the compiled
engine is checked on both backends, the engine and the pure-Python code behind
it (tests/engine_backends.py), on the same input; rpcgen's side runs once.
"""

from __future__ import annotations

from typing import Any

from engine_backends import both_backends
from gc_invariant import untracked_problems
from reference.rpcgen_ref import Reference, RoundTrip
from xdr_values import Deviation, Scan, Scanner
from xdrgen.runtime.engine import backend

#: Deviations where our decoder accepts what rpcgen accepts and keeps every byte.
OURS_ACCEPTS = frozenset({Deviation.STRING_NUL})

#: Deviations after which rpcgen's re-encoding still equals its input.
_REENCODES_AS_IS = frozenset(
    {
        Deviation.TRAILING,
        Deviation.ENUM,
        Deviation.SIGNALLING_NAN,
        Deviation.EMPTY_ELEMENTS,
    }
)

#: Length words that no small input can back: both sides refuse without allocating.
HOSTILE_LENGTHS = (0xFFFFFFFF, 0x80000000, 0x7FFFFFFC)

#: rpcgen's xdr_array calls the element routine once per declared element, also
#: for elements of no bytes: a count of 2**32 - 1 of them keeps its C busy for
#: minutes.  Above this count the scanner's model (checked against rpcgen's C at
#: smaller counts by test_more_elements_of_no_bytes_*) stands in for the C.
EMPTY_ELEMENTS_ASKED_UP_TO = 1 << 20


def _roundtrip(
    reference: Reference, scan: Scan, type_name: str, data: bytes
) -> RoundTrip:
    """rpcgen's C on ``data``, unless it would loop over billions of empty elements."""
    for kind, offset in scan.deviations:
        if (
            kind is Deviation.EMPTY_ELEMENTS
            and int.from_bytes(data[offset : offset + 4], "big")
            > EMPTY_ELEMENTS_ASKED_UP_TO
        ):
            # What rpcgen does with them: takes them all and writes them back as is.
            consumed = scan.consumed if scan.accepted else 0
            return RoundTrip(scan.accepted, consumed, data[:consumed] or None)
    return reference.roundtrip(type_name, data)


def check_valid_encoding(
    reference: Reference, codec: Any, type_name: str, data: bytes
) -> None:
    """A canonical encoding: rpcgen and the codec both read it and write it back as is."""
    theirs = reference.roundtrip(type_name, data)
    assert theirs.decoded and theirs.consumed == len(data), (data.hex(), theirs)
    assert theirs.reencoded == data, ("rpcgen", data.hex(), theirs)
    for ours_codec in both_backends(codec):
        for buffer in (data, bytearray(data), memoryview(data)):
            value = ours_codec.decode(buffer)
            ours = ours_codec.encode(value)
            assert ours == data, (
                "xdrgen",
                backend(ours_codec),
                type(buffer).__name__,
                data.hex(),
                ours.hex(),
            )
        if backend(ours_codec) == "engine":
            # What the engine left out of the cyclic GC cannot need it (the pure
            # code untracks nothing; the buffer type does not change the value).
            problems = untracked_problems(ours_codec.decode(data))
            assert not problems, (data.hex(), problems)


def check_value(
    reference: Reference, codec: Any, type_name: str, value: Any, *, equal: bool = True
) -> bytes:
    """A value built in Python: its encoding is one rpcgen reads and writes back as is,
    and it decodes to an equal value (``equal=False`` when it holds NaNs).

    This is the encode-from-values path (issue 10, defect 1), which decode-then-encode
    of rpcgen's bytes reaches only when the decoder builds the same shapes.
    """
    results = {
        _check_value_on(reference, c, type_name, value, equal)
        for c in both_backends(codec)
    }
    assert len(results) == 1, ("the backends encode differently", results)
    return results.pop()


def _check_value_on(
    reference: Reference, codec: Any, type_name: str, value: Any, equal: bool
) -> bytes:
    data = codec.encode(value)
    assert isinstance(data, bytes) and len(data) % 4 == 0, ("xdrgen encode", data)
    theirs = reference.roundtrip(type_name, data)
    assert theirs.decoded and theirs.consumed == len(data), (
        "rpcgen rejects xdrgen's encoding",
        data.hex(),
        theirs,
    )
    assert theirs.reencoded == data, ("rpcgen", data.hex(), theirs)
    decoded = codec.decode(data)
    if equal:
        assert decoded == value, ("xdrgen decode", data.hex(), decoded, value)
    assert codec.encode(decoded) == data, ("xdrgen re-encode", data.hex())
    # The framing entry points: appending after other bytes, reading at an offset
    # with bytes after the value.
    buffer = bytearray(b"\xa5" * 4)
    codec.encode_into(buffer, value)
    assert buffer == b"\xa5" * 4 + data, ("xdrgen encode_into", data.hex(), buffer.hex())
    framed = b"\x5a" * 8 + data + b"\x00\x00\x00\x07"
    again, end = codec.decode_from(memoryview(framed), 8)
    assert end == 8 + len(data), ("xdrgen decode_from", data.hex(), end)
    assert codec.encode(again) == data, ("xdrgen decode_from", data.hex())
    return data


def check_damaged(
    reference: Reference, codec: Any, scanner: Scanner, type_name: str, data: bytes
) -> None:
    """Any input: accepted and rejected alike, except the documented deviations."""
    from xdrgen.runtime.errors import XdrDecodeError

    scan = scanner.scan(type_name, data)
    theirs = _roundtrip(reference, scan, type_name, data)
    # The classifier must describe rpcgen's C exactly, or it explains nothing.
    assert scan.accepted == theirs.decoded, ("scanner vs rpcgen", data.hex(), scan)
    kinds = {kind for kind, _ in scan.deviations}
    if scan.accepted:
        assert scan.consumed == theirs.consumed, ("scanner vs rpcgen", data.hex(), scan)
        if not kinds - _REENCODES_AS_IS:
            assert theirs.reencoded == data[: theirs.consumed], data.hex()

    for ours in both_backends(codec):
        try:
            value = ours.decode(data)
        except XdrDecodeError as error:
            assert error.offset is not None, f"no offset in {error!r}"
            assert not scan.canonical and not (
                scan.accepted and kinds <= OURS_ACCEPTS
            ), f"xdrgen rejects an input rpcgen takes as is ({error}); {data.hex()}"
        else:
            assert scan.accepted, f"xdrgen accepts bytes rpcgen rejects: {data.hex()}"
            assert (
                kinds <= OURS_ACCEPTS
            ), f"xdrgen accepts non-canonical input ({sorted(kinds)}): {data.hex()}"
            assert (
                ours.encode(value) == data
            ), f"xdrgen ({backend(ours)}) loses bytes of {data.hex()}"

        if scan.accepted and kinds == {Deviation.TRAILING}:
            # Strict decode rejects what follows the value; the value itself must match.
            prefix = data[: scan.consumed]
            assert ours.encode(ours.decode(prefix)) == theirs.reencoded == prefix


def check_hostile_lengths(
    reference: Reference, codec: Any, scanner: Scanner, type_name: str
) -> None:
    """A 4 GiB length on its own: both sides refuse, ours with a typed error at once."""
    from xdrgen.runtime.errors import XdrDecodeError

    for word in HOSTILE_LENGTHS:
        data = word.to_bytes(4, "big") * 2
        scan = scanner.scan(type_name, data)
        theirs = _roundtrip(reference, scan, type_name, data)
        assert scan.accepted == theirs.decoded, ("scanner vs rpcgen", data.hex())
        kinds = {kind for kind, _ in scan.deviations}
        if scan.accepted and kinds <= OURS_ACCEPTS:
            continue  # e.g. two ints: nothing hostile about them
        for ours in both_backends(codec):
            try:
                ours.decode(data)
            except XdrDecodeError:
                continue
            raise AssertionError(
                f"xdrgen ({backend(ours)}) accepts hostile input {data.hex()}"
            )
