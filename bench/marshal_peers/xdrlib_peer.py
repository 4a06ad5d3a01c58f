"""Hand-written marshallers over xdrlib's Packer/Unpacker: the "what you'd write by hand" peer.

One encode/decode pair per benchmark workload, written the way a careful person
would write them with the standard-library-style API (PyPI ``standard-xdrlib``):
small ``__slots__`` classes for the values, ``Packer``/``Unpacker`` for the bytes,
and a check that decoding consumed everything.  ``strings_as_text`` makes XDR
strings Python ``str`` (UTF-8, surrogateescape) instead of ``bytes`` so the peer
does the same work as a generated module that maps ``string`` to ``str``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xdrlib import Packer, Unpacker

VIR_UUID_BUFLEN = 16
REMOTE_STRING_MAX = 4194304
REMOTE_DOMAIN_LIST_MAX = 16384
REMOTE_DOMAIN_GUEST_INFO_PARAMS_MAX = 2048
REMOTE_DOMAIN_BLOCK_PEEK_BUFFER_MAX = 4194304

# VIR_TYPED_PARAM_* (libvirt.h)
(
    PARAM_INT,
    PARAM_UINT,
    PARAM_LLONG,
    PARAM_ULLONG,
    PARAM_DOUBLE,
    PARAM_BOOLEAN,
    PARAM_STRING,
) = range(1, 8)


class DomainGetInfoRet:
    __slots__ = ("state", "maxMem", "memory", "nrVirtCpu", "cpuTime")

    def __init__(
        self, state: int, maxMem: int, memory: int, nrVirtCpu: int, cpuTime: int
    ):
        self.state = state
        self.maxMem = maxMem
        self.memory = memory
        self.nrVirtCpu = nrVirtCpu
        self.cpuTime = cpuTime


class NonnullDomain:
    __slots__ = ("name", "uuid", "id")

    def __init__(self, name: Any, uuid: bytes, id: int):
        self.name = name
        self.uuid = uuid
        self.id = id


class ConnectListAllDomainsRet:
    __slots__ = ("domains", "ret")

    def __init__(self, domains: list[NonnullDomain], ret: int):
        self.domains = domains
        self.ret = ret


class TypedParam:
    __slots__ = ("field", "type", "value")

    def __init__(self, field: Any, type: int, value: Any):
        self.field = field
        self.type = type
        self.value = value


class DomainBlockPeekRet:
    __slots__ = ("buffer",)

    def __init__(self, buffer: bytes):
        self.buffer = buffer


def _check_done(unpacker: Unpacker) -> None:
    unpacker.done()  # raises xdrlib.Error on trailing bytes


@dataclass(frozen=True)
class Workload:
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


def make_peer(strings_as_text: bool) -> dict[str, Workload]:
    """The four workloads' hand-written codecs, keyed by libvirt type name."""

    def pack_str(packer: Packer, value: Any) -> None:
        data = value.encode("utf-8", "surrogateescape") if strings_as_text else value
        if len(data) > REMOTE_STRING_MAX:
            raise ValueError("string too long")
        packer.pack_string(data)

    def unpack_str(unpacker: Unpacker) -> Any:
        data = unpacker.unpack_string()
        if len(data) > REMOTE_STRING_MAX:
            raise ValueError("string too long")
        return data.decode("utf-8", "surrogateescape") if strings_as_text else data

    # W1 ---------------------------------------------------------------
    def encode_get_info(value: DomainGetInfoRet) -> bytes:
        packer = Packer()
        packer.pack_uint(value.state)
        packer.pack_uhyper(value.maxMem)
        packer.pack_uhyper(value.memory)
        packer.pack_uint(value.nrVirtCpu)
        packer.pack_uhyper(value.cpuTime)
        return packer.get_buffer()

    def decode_get_info(data: bytes) -> DomainGetInfoRet:
        unpacker = Unpacker(data)
        value = DomainGetInfoRet(
            unpacker.unpack_uint(),
            unpacker.unpack_uhyper(),
            unpacker.unpack_uhyper(),
            unpacker.unpack_uint(),
            unpacker.unpack_uhyper(),
        )
        _check_done(unpacker)
        return value

    # W2 ---------------------------------------------------------------
    def encode_list_all(value: ConnectListAllDomainsRet) -> bytes:
        packer = Packer()
        if len(value.domains) > REMOTE_DOMAIN_LIST_MAX:
            raise ValueError("too many domains")

        def pack_domain(domain: NonnullDomain) -> None:
            pack_str(packer, domain.name)
            packer.pack_fopaque(VIR_UUID_BUFLEN, domain.uuid)
            packer.pack_int(domain.id)

        packer.pack_array(value.domains, pack_domain)
        packer.pack_uint(value.ret)
        return packer.get_buffer()

    def decode_list_all(data: bytes) -> ConnectListAllDomainsRet:
        unpacker = Unpacker(data)

        def unpack_domain() -> NonnullDomain:
            return NonnullDomain(
                unpack_str(unpacker),
                unpacker.unpack_fopaque(VIR_UUID_BUFLEN),
                unpacker.unpack_int(),
            )

        count = unpacker.unpack_uint()
        if count > REMOTE_DOMAIN_LIST_MAX:
            raise ValueError("too many domains")
        domains = [unpack_domain() for _ in range(count)]
        value = ConnectListAllDomainsRet(domains, unpacker.unpack_uint())
        _check_done(unpacker)
        return value

    # W3 ---------------------------------------------------------------
    def encode_guest_info(params: list[TypedParam]) -> bytes:
        packer = Packer()
        if len(params) > REMOTE_DOMAIN_GUEST_INFO_PARAMS_MAX:
            raise ValueError("too many params")
        packer.pack_uint(len(params))
        for param in params:
            pack_str(packer, param.field)
            kind = param.type
            packer.pack_int(kind)
            if kind == PARAM_INT or kind == PARAM_BOOLEAN:
                packer.pack_int(param.value)
            elif kind == PARAM_UINT:
                packer.pack_uint(param.value)
            elif kind == PARAM_LLONG:
                packer.pack_hyper(param.value)
            elif kind == PARAM_ULLONG:
                packer.pack_uhyper(param.value)
            elif kind == PARAM_DOUBLE:
                packer.pack_double(param.value)
            elif kind == PARAM_STRING:
                pack_str(packer, param.value)
            else:
                raise ValueError(f"bad typed param type {kind}")
        return packer.get_buffer()

    def decode_guest_info(data: bytes) -> list[TypedParam]:
        unpacker = Unpacker(data)
        count = unpacker.unpack_uint()
        if count > REMOTE_DOMAIN_GUEST_INFO_PARAMS_MAX:
            raise ValueError("too many params")
        params = []
        for _ in range(count):
            field = unpack_str(unpacker)
            kind = unpacker.unpack_int()
            value: Any
            if kind == PARAM_INT or kind == PARAM_BOOLEAN:
                value = unpacker.unpack_int()
            elif kind == PARAM_UINT:
                value = unpacker.unpack_uint()
            elif kind == PARAM_LLONG:
                value = unpacker.unpack_hyper()
            elif kind == PARAM_ULLONG:
                value = unpacker.unpack_uhyper()
            elif kind == PARAM_DOUBLE:
                value = unpacker.unpack_double()
            elif kind == PARAM_STRING:
                value = unpack_str(unpacker)
            else:
                raise ValueError(f"bad typed param type {kind}")
            params.append(TypedParam(field, kind, value))
        _check_done(unpacker)
        return params

    # W4 ---------------------------------------------------------------
    def encode_block_peek(value: DomainBlockPeekRet) -> bytes:
        if len(value.buffer) > REMOTE_DOMAIN_BLOCK_PEEK_BUFFER_MAX:
            raise ValueError("buffer too long")
        packer = Packer()
        packer.pack_opaque(value.buffer)
        return packer.get_buffer()

    def decode_block_peek(data: bytes) -> DomainBlockPeekRet:
        unpacker = Unpacker(data)
        value = DomainBlockPeekRet(unpacker.unpack_opaque())
        if len(value.buffer) > REMOTE_DOMAIN_BLOCK_PEEK_BUFFER_MAX:
            raise ValueError("buffer too long")
        _check_done(unpacker)
        return value

    return {
        "remote_domain_get_info_ret": Workload(encode_get_info, decode_get_info),
        "remote_connect_list_all_domains_ret": Workload(
            encode_list_all, decode_list_all
        ),
        "remote_domain_get_guest_info_ret": Workload(
            encode_guest_info, decode_guest_info
        ),
        "remote_domain_block_peek_ret": Workload(encode_block_peek, decode_block_peek),
    }
