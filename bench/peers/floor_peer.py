"""The fastest pure Python we know for W1–W3, with every check left out: a floor.

Each pair builds exactly the objects (the generated module's own classes) and the
bytes that the generated code does, with the cheapest CPython 3.11 idioms we have
measured, and validates nothing: no declared maxima, no padding, no range, enum or
fixed-length checks, no error paths, no strict end-of-input test.  It is not a
usable codec.  It answers one question for the benchmark: how fast can Python go
here at all?  A target that even this floor misses cannot be met by a codec that
must also do the checks (see docs/generated-api.md, "Where the time goes").
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from itertools import islice, repeat
from typing import Any

Pair = tuple[Callable[[Any], bytes], Callable[[bytes], Any]]

_U32 = struct.Struct(">I")
_new = object.__new__


class _Formats(dict[int, struct.Struct]):
    """``>`` + "length word, n bytes, padding" + ``tail``, per n (padding skipped)."""

    def __init__(self, head: str, tail: str) -> None:
        super().__init__()
        self.head, self.tail = head, tail

    def __missing__(self, n: int) -> struct.Struct:
        packer = self[n] = struct.Struct(f">{self.head}{n}s{(-n) & 3}x{self.tail}")
        return packer


def make_floor(module: Any) -> dict[str, Pair]:
    """Encode/decode pairs over ``module``, a module generated from remote_protocol.x."""
    info_ret = module.remote_domain_get_info_ret
    list_ret = module.remote_connect_list_all_domains_ret
    domain = module.remote_nonnull_domain
    guest_ret = module.remote_domain_get_guest_info_ret
    param = module.remote_typed_param
    param_value = module.remote_typed_param_value

    w1 = struct.Struct(">IQQIQ")

    def w1_encode(v: Any) -> bytes:
        return w1.pack(v.state, v.maxMem, v.memory, v.nrVirtCpu, v.cpuTime)

    def w1_decode(data: bytes) -> Any:
        o = _new(info_ret)
        o.state, o.maxMem, o.memory, o.nrVirtCpu, o.cpuTime = w1.unpack(data)
        return o

    dom_enc = _Formats("I", "16si")
    dom_next = _Formats("", "16siI")  # also reads the next element's length word
    dom_last = _Formats("", "16si")

    def w2_encode(v: Any) -> bytes:
        domains = v.domains
        buf = bytearray(_U32.pack(len(domains)))
        for d in domains:
            b = d.name.encode()
            n = len(b)
            buf += dom_enc[n].pack(n, b, d.uuid, d.id)
        buf += _U32.pack(v.ret)
        return bytes(buf)

    def w2_decode(data: bytes) -> Any:
        o = _new(list_ret)
        (count,) = _U32.unpack_from(data, 0)
        off = 4
        items = list(map(_new, repeat(domain, count)))
        if count:
            (n,) = _U32.unpack_from(data, off)
            off += 4
            for d in islice(items, count - 1):
                k = dom_next[n]
                b, d.uuid, d.id, n = k.unpack_from(data, off)
                d.name = b.decode()
                off += k.size
            d = items[-1]
            k = dom_last[n]
            b, d.uuid, d.id = k.unpack_from(data, off)
            d.name = b.decode()
            off += k.size
        o.domains = items
        (o.ret,) = _U32.unpack_from(data, off)
        return o

    field_enc = {
        1: _Formats("I", "ii"),
        2: _Formats("I", "iI"),
        3: _Formats("I", "iq"),
        4: _Formats("I", "iQ"),
        5: _Formats("I", "id"),
        6: _Formats("I", "ii"),
    }
    field_str = _Formats("I", "iI")
    text = _Formats("", "")  # bytes and padding, no length word
    field_dec = _Formats("", "i")
    s_i, s_u, s_q, s_uq, s_d = (struct.Struct(f">{c}") for c in "iIqQd")

    def w3_encode(v: Any) -> bytes:
        params = v.params
        buf = bytearray(_U32.pack(len(params)))
        for p in params:
            x = p.value
            t = x.type
            b = p.field.encode()
            n = len(b)
            if t == 7:
                s = x.value.encode()
                m = len(s)
                buf += field_str[n].pack(n, b, 7, m)
                buf += text[m].pack(s)
            else:
                buf += field_enc[t][n].pack(n, b, t, x.value)
        return bytes(buf)

    def w3_decode(data: bytes) -> Any:
        o = _new(guest_ret)
        (count,) = _U32.unpack_from(data, 0)
        off = 4
        items = list(map(_new, repeat(param, count)))
        values = list(map(_new, repeat(param_value, count)))
        w: Any
        for p, u in zip(items, values):
            (n,) = _U32.unpack_from(data, off)
            k = field_dec[n]
            b, t = k.unpack_from(data, off + 4)
            p.field = b.decode()
            off += k.size + 4
            if t == 1:
                (w,) = s_i.unpack_from(data, off)
                off += 4
            elif t == 2:
                (w,) = s_u.unpack_from(data, off)
                off += 4
            elif t == 3:
                (w,) = s_q.unpack_from(data, off)
                off += 8
            elif t == 4:
                (w,) = s_uq.unpack_from(data, off)
                off += 8
            elif t == 5:
                (w,) = s_d.unpack_from(data, off)
                off += 8
            elif t == 6:
                (w,) = s_i.unpack_from(data, off)
                off += 4
            else:
                (n,) = _U32.unpack_from(data, off)
                k = text[n]
                (s,) = k.unpack_from(data, off + 4)
                w = s.decode()
                off += k.size + 4
            u.type = t
            u.value = w
            p.value = u
        o.params = items
        return o

    return {
        "remote_domain_get_info_ret": (w1_encode, w1_decode),
        "remote_connect_list_all_domains_ret": (w2_encode, w2_decode),
        "remote_domain_get_guest_info_ret": (w3_encode, w3_decode),
    }
