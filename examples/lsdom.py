"""List a libvirt daemon's domains with the generated client, as ``virsh list --all`` does.

    python examples/lsdom.py --socket /run/libvirt/libvirt-sock --uri test:///default

Prints one line per domain, ``id name state`` (id ``-`` for inactive domains,
state words as virsh writes them), running domains first by id, then the
inactive ones by name, as virsh orders them.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from libvirt_codegen import load_remote_protocol  # noqa: E402
from xdrgen.runtime.virnet.errors import VirNetError  # noqa: E402

#: virDomainState -> virsh's words (virshDomainStateToString).
STATE_WORDS = {
    0: "no state",
    1: "running",
    2: "idle",
    3: "paused",
    4: "in shutdown",
    5: "shut off",
    6: "crashed",
    7: "pmsuspended",
}


def list_domains(client: Any) -> list[tuple[str, str, str]]:
    """(id, name, state) of every domain, in virsh's order."""
    listed = client.connect_list_all_domains(need_results=1, flags=0)
    rows: list[tuple[int, str, str]] = []
    for dom in listed.domains:
        state = client.domain_get_state(dom, flags=0).state
        rows.append((dom.id, dom.name, STATE_WORDS.get(state, "no state")))
    active = sorted((r for r in rows if r[0] >= 0), key=lambda r: r[0])
    inactive = sorted((r for r in rows if r[0] < 0), key=lambda r: r[1])
    return [("-" if i < 0 else str(i), name, state) for i, name, state in active + inactive]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="the daemon's unix socket")
    parser.add_argument("--uri", default="test:///default", help="connection URI to open (default: %(default)s)")
    args = parser.parse_args(argv)
    # Names that are not UTF-8 arrive with surrogateescape: print their bytes as virsh does.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="surrogateescape")
    rp = load_remote_protocol()
    try:
        with rp.RemoteClient.connect_unix(args.socket) as client:
            client.connect_open(name=args.uri, flags=0)
            for row in list_domains(client):
                print(" ".join(row))
            client.connect_close()
    except (OSError, VirNetError) as exc:  # VirNetError includes replies that do not decode
        print(f"lsdom: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
