"""rpcgen's views: the symbol it defines for each C file it writes, and which ones
xdrgen reads (docs/preprocessing.md, "rpcgen's views")."""

from __future__ import annotations

from collections.abc import Mapping

#: The symbols rpcgen defines, one per C file it writes: the header, the XDR routines,
#: the server, the client stubs, the dispatch table.  Each is a "view" of the .x file.
RPCGEN_VIEWS = ("RPC_HDR", "RPC_XDR", "RPC_SVC", "RPC_CLNT", "RPC_TBL")

#: What xdrgen defines when ``predefined`` is not given: the view of rpcgen's XDR-routine
#: pass (``rpcgen -c``), i.e. exactly the declarations rpcgen writes marshallers for.
#: (``RPC_HDR`` blocks hold C for the header; nis.x's is not even valid rpcgen input.)
DEFAULT_PREDEFINED: Mapping[str, str] = {"RPC_XDR": "1"}

#: The other views, read (with the default ``predefined``) only for their ``%`` lines:
#: one Python module plays the part of every C file, so it needs their ``%#define``s.
OTHER_VIEWS = ("RPC_HDR", "RPC_SVC", "RPC_CLNT", "RPC_TBL")
