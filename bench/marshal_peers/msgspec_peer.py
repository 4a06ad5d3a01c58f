"""msgspec (PyPI) as a peer for W1–W4: the same data as msgspec Structs in MessagePack.

msgspec does not speak XDR; it is a compiled serializer that builds Python
objects, which shows how close a Python library can come to C.  The Structs are
``array_like`` (no field names on the wire, as in XDR) and their integers carry
the XDR ranges as constraints, checked on decode; W3's union is a tagged union
whose tag is the discriminant.  Values are converted from the generated
module's, so every peer handles the same data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

U8 = Annotated[int, Meta(ge=0, le=255)]
U16 = Annotated[int, Meta(ge=0, le=65535)]
I32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
U32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
I64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
# msgspec bounds must fit an int64: its uint64 decoding checks the upper end.
U64 = Annotated[int, Meta(ge=0)]


class DomainInfo(Struct, array_like=True):
    state: U8
    maxMem: U64
    memory: U64
    nrVirtCpu: U16
    cpuTime: U64


class Domain(Struct, array_like=True):
    name: str
    uuid: Annotated[bytes, Meta(min_length=16, max_length=16)]
    id: I32


class Domains(Struct, array_like=True):
    domains: list[Domain]
    ret: U32


class PInt(Struct, array_like=True, tag=1):
    i: I32


class PUInt(Struct, array_like=True, tag=2):
    ui: U32


class PLong(Struct, array_like=True, tag=3):
    l: I64  # noqa: E741 - the .x name


class PULong(Struct, array_like=True, tag=4):
    ul: U64


class PDouble(Struct, array_like=True, tag=5):
    d: float


class PBool(Struct, array_like=True, tag=6):
    b: I32


class PString(Struct, array_like=True, tag=7):
    s: str


class Param(Struct, array_like=True):
    field: str
    value: "Arm"


class GuestInfo(Struct, array_like=True):
    params: list[Param]


class Peek(Struct, array_like=True):
    buffer: bytes


Arm = PInt | PUInt | PLong | PULong | PDouble | PBool | PString

_ARMS: dict[int, type[Arm]] = {
    1: PInt,
    2: PUInt,
    3: PLong,
    4: PULong,
    5: PDouble,
    6: PBool,
    7: PString,
}


def _w1(v: Any) -> DomainInfo:
    return DomainInfo(v.state, v.maxMem, v.memory, v.nrVirtCpu, v.cpuTime)


def _w2(v: Any) -> Domains:
    return Domains([Domain(d.name, d.uuid, d.id) for d in v.domains], v.ret)


def _w3(v: Any) -> GuestInfo:
    return GuestInfo(
        [Param(p.field, _ARMS[p.value.type](p.value.value)) for p in v.params]
    )


def _w4(v: Any) -> Peek:
    return Peek(v.buffer)


#: Per type: (its msgspec Struct, the conversion from the generated module's value).
PEERS: dict[str, tuple[type[Struct], Callable[[Any], Struct]]] = {
    "remote_domain_get_info_ret": (DomainInfo, _w1),
    "remote_connect_list_all_domains_ret": (Domains, _w2),
    "remote_domain_get_guest_info_ret": (GuestInfo, _w3),
    "remote_domain_block_peek_ret": (Peek, _w4),
}


def make_msgspec_op(
    type_name: str, value: Any
) -> tuple[Callable[[Any], bytes], Struct, Callable[[bytes], Any], bytes]:
    """encode, its value, decode and its input for ``type_name``'s workload, from
    the generated module's ``value``; the round trip is checked first."""
    cls, convert = PEERS[type_name]
    ours = convert(value)
    encode = msgspec.msgpack.Encoder().encode
    decode = msgspec.msgpack.Decoder(cls).decode
    data = encode(ours)
    if decode(data) != ours:
        raise SystemExit(f"msgspec peer does not round-trip {type_name}")
    return encode, ours, decode, data
