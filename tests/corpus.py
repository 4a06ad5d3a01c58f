"""The real-file corpus: every .x that Debian 12 installs for ONC RPC, read in place.

- ``/usr/include/rpcsvc/*.x``: rpcsvc-proto's twelve files, and libnsl-dev's five
  (nis*.x, yp*.x; libc6-dev depends on libnsl-dev, .ci/run installs it by name);
- ``/usr/include/tirpc/**/*.x``: libtirpc-dev's rpcb_prot.x and crypt.x.

A file that takes names from elsewhere gets the options a user would give, with
the reason (docs/compatibility.md lists the same cases).  The files are never
copied into the repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

RPCSVC = Path("/usr/include/rpcsvc")
TIRPC = Path("/usr/include/tirpc")
AUTH_H = TIRPC / "rpc" / "auth.h"


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    #: xdrgen options, as on the command line.
    options: tuple[str, ...] = ()
    #: Why the options are needed.
    reason: str = ""
    #: .x files given with --import (the reference builds rpcgen's C for them too).
    imports: tuple[Path, ...] = ()
    #: C headers given with --constants-from.
    constants_from: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name


CORPUS: tuple[CorpusFile, ...] = (
    CorpusFile(RPCSVC / "bootparam_prot.x"),
    CorpusFile(
        RPCSVC / "key_prot.x",
        options=("--constants-from", str(AUTH_H)),
        reason="MAXNETNAMELEN (255) is defined by libtirpc's rpc/auth.h, not by the .x",
        constants_from=(AUTH_H,),
    ),
    CorpusFile(RPCSVC / "klm_prot.x"),
    CorpusFile(RPCSVC / "mount.x"),
    CorpusFile(RPCSVC / "nfs_prot.x"),
    CorpusFile(RPCSVC / "nis.x"),
    CorpusFile(
        RPCSVC / "nis_callback.x",
        options=("--import", str(RPCSVC / "nis.x")),
        reason="uses nis_object and nis_error from nis.x (its C includes <rpcsvc/nis.h>)",
        imports=(RPCSVC / "nis.x",),
    ),
    CorpusFile(RPCSVC / "nis_object.x"),
    CorpusFile(RPCSVC / "nlm_prot.x"),
    CorpusFile(RPCSVC / "rex.x"),
    CorpusFile(RPCSVC / "rquota.x"),
    CorpusFile(RPCSVC / "rstat.x"),
    CorpusFile(RPCSVC / "rusers.x"),
    CorpusFile(RPCSVC / "sm_inter.x"),
    CorpusFile(RPCSVC / "spray.x"),
    CorpusFile(RPCSVC / "yp.x"),
    CorpusFile(RPCSVC / "yppasswd.x"),
    CorpusFile(TIRPC / "rpc" / "rpcb_prot.x"),
    CorpusFile(TIRPC / "rpcsvc" / "crypt.x"),
)

BY_NAME = {entry.name: entry for entry in CORPUS}


def installed_x_files() -> list[Path]:
    """What Debian actually installed in the two corpus places."""
    found = sorted(RPCSVC.glob("*.x")) if RPCSVC.is_dir() else []
    if TIRPC.is_dir():
        found += sorted(TIRPC.rglob("*.x"))
    return found


def require_corpus_file(entry: CorpusFile) -> Path:
    """``entry.path``, after checking it (and what it needs) is installed.

    Skips when missing, unless XDRGEN_REQUIRE_PEERS=1 (CI), where it fails.
    """
    for path in (entry.path, *entry.imports, *entry.constants_from):
        if not path.is_file():
            message = (
                f"{path} not installed (Debian 12: rpcsvc-proto, libnsl-dev, libtirpc-dev)"
            )
            if os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
                pytest.fail(message + " and XDRGEN_REQUIRE_PEERS=1")
            pytest.skip(message)
    return entry.path
