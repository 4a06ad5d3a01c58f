"""The fastest pure Python we know for W1–W3: a floor, without and with checks.

Each pair builds exactly the objects (the generated module's own classes) and the
bytes that the generated code does, with the cheapest CPython 3.11 idioms we have
measured.  :func:`make_floor` validates nothing: no declared maxima, no padding,
no range, discriminant or fixed-length checks, no strict end-of-input test, no
error paths.  :func:`make_checked_floor` adds exactly the checks issue 3 requires
(each a bare ``raise ValueError``: no field path or offset is worked out).
Neither is a usable codec.  They answer how fast Python can go here at all: a
target that the checked floor misses cannot be met by a codec that must do those
checks (see docs/generated-api.md, "Where the time goes").  The two floors
repeat each other's code on purpose: sharing it through helper functions or
flags would add calls or tests to the very loops they time.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from itertools import islice, repeat
from typing import Any

Pair = tuple[Callable[[Any], bytes], Callable[[bytes], Any]]

_U32 = struct.Struct(">I")
_new = object.__new__


_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")
_STRING_MAX = 4194304  # REMOTE_STRING_MAX
_DOMAINS_MAX = 16384  # REMOTE_DOMAIN_LIST_MAX
_PARAMS_MAX = 2048  # REMOTE_DOMAIN_GUEST_INFO_PARAMS_MAX


class _Formats(dict[int, struct.Struct]):
    """``>`` + "length word, n bytes, padding" + ``tail``, per n.

    The padding is skipped (``x``), or read as bytes (``s``) to be checked.
    """

    def __init__(self, head: str, tail: str, pad: str = "x") -> None:
        super().__init__()
        self.head, self.tail, self.pad = head, tail, pad

    def __missing__(self, n: int) -> struct.Struct:
        fmt = f">{self.head}{n}s{(-n) & 3}{self.pad}{self.tail}"
        packer = self[n] = struct.Struct(fmt)
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


def make_checked_floor(module: Any) -> dict[str, Pair]:
    """:func:`make_floor` plus the checks issue 3 requires, and nothing else."""
    info_ret = module.remote_domain_get_info_ret
    list_ret = module.remote_connect_list_all_domains_ret
    domain = module.remote_nonnull_domain
    guest_ret = module.remote_domain_get_guest_info_ret
    param = module.remote_typed_param
    param_value = module.remote_typed_param_value

    w1_in = struct.Struct(">IQQIQ")
    w1_out = struct.Struct(">3xBQQ2xHQ")  # pack range-checks the char and short

    def w1_encode(v: Any) -> bytes:
        return w1_out.pack(v.state, v.maxMem, v.memory, v.nrVirtCpu, v.cpuTime)

    def w1_decode(data: bytes) -> Any:
        o = _new(info_ret)
        o.state, o.maxMem, o.memory, o.nrVirtCpu, o.cpuTime = w1_in.unpack(data)
        if o.state > 255 or o.nrVirtCpu > 65535:
            raise ValueError
        return o

    dom_enc = _Formats("I", "16si")
    dom_next = _Formats("", "16siI", "s")
    dom_last = _Formats("", "16si", "s")

    def w2_encode(v: Any) -> bytes:
        domains = v.domains
        if len(domains) > _DOMAINS_MAX:
            raise ValueError
        buf = bytearray(_U32.pack(len(domains)))
        for d in domains:
            b = d.name.encode()
            n = len(b)
            if n > _STRING_MAX or len(d.uuid) != 16:
                raise ValueError
            buf += dom_enc[n].pack(n, b, d.uuid, d.id)
        buf += _U32.pack(v.ret)
        return bytes(buf)

    def w2_decode(data: bytes) -> Any:
        o = _new(list_ret)
        (count,) = _U32.unpack_from(data, 0)
        if count > _DOMAINS_MAX or 4 + count * 24 > len(data):
            raise ValueError
        off = 4
        items = list(map(_new, repeat(domain, count)))
        if count:
            (n,) = _U32.unpack_from(data, off)
            off += 4
            for d in islice(items, count - 1):
                if n > _STRING_MAX:
                    raise ValueError
                k = dom_next[n]
                b, pad, d.uuid, d.id, following = k.unpack_from(data, off)
                if pad != _PAD[n & 3]:
                    raise ValueError
                d.name = b.decode()
                off += k.size
                n = following
            d = items[-1]
            if n > _STRING_MAX:
                raise ValueError
            k = dom_last[n]
            b, pad, d.uuid, d.id = k.unpack_from(data, off)
            if pad != _PAD[n & 3]:
                raise ValueError
            d.name = b.decode()
            off += k.size
        o.domains = items
        (o.ret,) = _U32.unpack_from(data, off)
        if off + 4 != len(data):
            raise ValueError
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
    text_enc = _Formats("", "")
    field_dec = _Formats("", "i", "s")
    text_dec = _Formats("", "", "s")
    s_i, s_u, s_q, s_uq, s_d = (struct.Struct(f">{c}") for c in "iIqQd")

    def w3_encode(v: Any) -> bytes:
        params = v.params
        if len(params) > _PARAMS_MAX:
            raise ValueError
        buf = bytearray(_U32.pack(len(params)))
        for p in params:
            x = p.value
            t = x.type
            b = p.field.encode()
            n = len(b)
            if n > _STRING_MAX:
                raise ValueError
            if t == 7:
                s = x.value.encode()
                m = len(s)
                if m > _STRING_MAX:
                    raise ValueError
                buf += field_str[n].pack(n, b, 7, m)
                buf += text_enc[m].pack(s)
            else:
                buf += field_enc[t][n].pack(n, b, t, x.value)  # KeyError: bad type
        return bytes(buf)

    def w3_decode(data: bytes) -> Any:
        o = _new(guest_ret)
        (count,) = _U32.unpack_from(data, 0)
        if count > _PARAMS_MAX or 4 + count * 12 > len(data):
            raise ValueError
        off = 4
        items = list(map(_new, repeat(param, count)))
        values = list(map(_new, repeat(param_value, count)))
        w: Any
        for p, u in zip(items, values):
            (n,) = _U32.unpack_from(data, off)
            if n > _STRING_MAX:
                raise ValueError
            k = field_dec[n]
            b, pad, t = k.unpack_from(data, off + 4)
            if pad != _PAD[n & 3]:
                raise ValueError
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
            elif t == 7:
                (n,) = _U32.unpack_from(data, off)
                if n > _STRING_MAX:
                    raise ValueError
                k = text_dec[n]
                s, pad = k.unpack_from(data, off + 4)
                if pad != _PAD[n & 3]:
                    raise ValueError
                w = s.decode()
                off += k.size + 4
            else:
                raise ValueError
            u.type = t
            u.value = w
            p.value = u
        o.params = items
        if off != len(data):
            raise ValueError
        return o

    return {
        "remote_domain_get_info_ret": (w1_encode, w1_decode),
        "remote_connect_list_all_domains_ret": (w2_encode, w2_decode),
        "remote_domain_get_guest_info_ret": (w3_encode, w3_decode),
    }
