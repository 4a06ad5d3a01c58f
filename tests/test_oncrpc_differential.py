"""The runtime's committed rpc_prot.py / rpcb_prot.py against rpcgen's C for the same .x files.

rpcgen's C for rpc_prot.x and rpcb_prot.x cannot be compiled as is next to
libtirpc's own headers (rpc_msg, opaque_auth, rpcb, AUTH_NONE... are defined
there too), so the reference is built from a copy in which every name the .x
defines carries the prefix ``xr_``: the same types, the same bytes.  Then, as
in test_differential_rpcgen.py: valid encodings go through both and come back
identical; damaged encodings are accepted and rejected alike, apart from the
deviations docs/compatibility.md lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from reference.harness import REPO_ROOT, require_reference
from reference.rpcgen_ref import Reference, RoundTrip, build_reference
from xdr_values import Deviation, Encodings, Scanner, mutations

RUNTIME = REPO_ROOT / "xdrgen" / "runtime" / "oncrpc"
PREFIX = "xr_"
OURS_ACCEPTS = frozenset({Deviation.STRING_NUL})
SETTINGS = settings(
    max_examples=40, derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def defined_names(model: object) -> set[str]:
    from xdrgen.model import EnumDef, XdrModule

    assert isinstance(model, XdrModule)
    names = set(model.constants) | set(model.types)
    for definition in model.types.values():
        if isinstance(definition, EnumDef):
            names.update(member.name for member in definition.members)
    for program in model.programs:
        names.add(program.name)
        for version in program.versions:
            names.add(version.name)
            names.update(proc.name for proc in version.procedures)
    return names


def prefixed_copy(source: Path, names: set[str], directory: Path) -> Path:
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b")
    text = pattern.sub(lambda m: PREFIX + m.group(1), source.read_text())
    target = directory / f"{PREFIX}{source.name}"
    target.write_text(text)
    return target


class Prefixed:
    """The reference, addressed with the original type names."""

    def __init__(self, reference: Reference) -> None:
        self.reference = reference

    def roundtrip(self, type_name: str, data: bytes) -> RoundTrip:
        return self.reference.roundtrip(PREFIX + type_name, data)


@pytest.fixture(scope="module", params=["rpc_prot", "rpcb_prot"])
def protocol(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, ModuleType, Prefixed]]:
    require_reference()
    import importlib

    from xdrgen.frontend import load

    stem = request.param
    source = RUNTIME / f"{stem}.x"
    model = load(source)
    copy = prefixed_copy(source, defined_names(model), tmp_path_factory.mktemp(stem))
    module = importlib.import_module(f"xdrgen.runtime.oncrpc.{stem}")
    with build_reference(copy) as reference:
        assert {PREFIX + t for t in model.types} <= set(reference.type_names)
        yield model, module, Prefixed(reference)


def for_every_type(model: object, check: Callable[[str], None]) -> None:
    failures = []
    for type_name in model.types:  # type: ignore[attr-defined]
        try:
            check(type_name)
        except Exception as exc:  # noqa: BLE001 - reported together
            failures.append(f"{type_name}: {type(exc).__name__}: {exc}")
    if failures:
        pytest.fail("\n\n".join(failures[:15]), pytrace=False)


def test_valid_encodings_roundtrip_identically(protocol: tuple[object, ModuleType, Prefixed]) -> None:
    model, module, reference = protocol
    encodings = Encodings(model)  # type: ignore[arg-type]

    def check(type_name: str) -> None:
        codec = module.XDR_TYPES[type_name]

        @SETTINGS
        @given(encodings.of(type_name))
        def roundtrip(data: bytes) -> None:
            theirs = reference.roundtrip(type_name, data)
            assert theirs.decoded and theirs.consumed == len(data) and theirs.reencoded == data, data.hex()
            assert codec.encode(codec.decode(data)) == data, data.hex()

        roundtrip()

    for_every_type(model, check)


def test_damaged_encodings_accepted_and_rejected_alike(protocol: tuple[object, ModuleType, Prefixed]) -> None:
    from xdrgen.runtime.errors import XdrDecodeError

    model, module, reference = protocol
    encodings = Encodings(model)  # type: ignore[arg-type]
    scanner = Scanner(model)  # type: ignore[arg-type]

    def check(type_name: str) -> None:
        codec = module.XDR_TYPES[type_name]

        @SETTINGS
        @given(mutations(encodings.of(type_name)))
        def agree(data: bytes) -> None:
            theirs = reference.roundtrip(type_name, data)
            scan = scanner.scan(type_name, data)
            assert scan.accepted == theirs.decoded, ("scanner vs rpcgen", data.hex(), scan)
            kinds = {kind for kind, _ in scan.deviations}
            try:
                value = codec.decode(data)
            except XdrDecodeError as error:
                assert error.offset is not None
                assert not scan.canonical and not (scan.accepted and kinds <= OURS_ACCEPTS), data.hex()
            else:
                assert scan.accepted and kinds <= OURS_ACCEPTS, data.hex()
                assert codec.encode(value) == data

        agree()

    for_every_type(model, check)
