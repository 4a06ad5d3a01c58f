"""Credentials a client sends: AUTH_NONE (the default) and AUTH_SYS."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from xdrgen.runtime.oncrpc import message as _m
from xdrgen.runtime.oncrpc import rpc_prot as _p


def auth_sys(
    uid: int | None = None,
    gid: int | None = None,
    gids: Sequence[int] | None = None,
    machinename: str | None = None,
    stamp: int | None = None,
) -> _p.opaque_auth:
    """An AUTH_SYS credential; what is not given comes from this process, as
    authsys_create_default does (uid, gid, up to 16 supplementary groups, host
    name, the time as stamp).  Limits (255-byte name, 16 groups) are checked here."""
    if machinename is None:
        import socket  # only here: importing the runtime must stay light

        machinename = socket.gethostname()
    if gids is None:
        gids = [g for g in os.getgroups()][: _p.MAX_SYS_GIDS]
    parms = _p.authsys_parms(
        stamp=int(time.time()) & 0xFFFFFFFF if stamp is None else stamp,
        machinename=machinename,
        uid=os.geteuid() if uid is None else uid,
        gid=os.getegid() if gid is None else gid,
        gids=list(gids),
    )
    return _m.auth_sys_credential(parms)


def auth_none() -> _p.opaque_auth:
    return _p.opaque_auth(flavor=_m.AUTH_NONE, body=b"")


__all__ = ["auth_sys", "auth_none"]
