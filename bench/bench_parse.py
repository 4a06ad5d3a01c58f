"""Parse time of libvirt's remote_protocol.x, parser construction included.

Each measurement runs in a fresh process (cold: imports, lexer and LR tables
built from scratch) and also in-process (warm: tables already built).  Goal:
<= 0.5 s cold for the whole front end (preprocess, parse, resolve).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "protocols"
REMOTE = SHARED / "libvirt" / "remote_protocol.x"
HEADER = Path("/usr/include/libvirt/libvirt.h")

COLD = """
import time, sys
from pathlib import Path
t0 = time.perf_counter()
from xdrgen.frontend import FrontendOptions, load
from xdrgen.frontend.parser import parse
t1 = time.perf_counter()
text = Path(sys.argv[1]).read_text()
spec, _ = parse(text, sys.argv[1])
t2 = time.perf_counter()
load(Path(sys.argv[1]), FrontendOptions(constants_from=(Path(sys.argv[2]),)))
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def main() -> None:
    if not REMOTE.is_file() or not HEADER.is_file():
        sys.exit(f"needs {REMOTE} and {HEADER}")
    imports, parses, loads = [], [], []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", COLD, str(REMOTE), str(HEADER)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        imports.append(float(out[0]))
        parses.append(float(out[1]))
        loads.append(float(out[2]))
    from xdrgen.frontend import FrontendOptions, load
    from xdrgen.frontend.parser import parse

    text = REMOTE.read_text()
    warm_parse, warm_load = [], []
    for _ in range(10):
        t0 = time.perf_counter()
        parse(text, str(REMOTE))
        t1 = time.perf_counter()
        load(REMOTE, FrontendOptions(constants_from=(HEADER,)))
        t2 = time.perf_counter()
        warm_parse.append(t1 - t0)
        warm_load.append(t2 - t1)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:8.1f} ms"

    print(f"remote_protocol.x ({len(text.splitlines())} lines)")
    print("| step | median |")
    print("|---|---|")
    print(f"| import xdrgen.frontend (cold process) | {ms(imports)} |")
    print(f"| first parse incl. lexer + LR table construction (cold) | {ms(parses)} |")
    print(f"| preprocess + parse + resolve + libvirt.h constants (after first parse) | {ms(loads)} |")
    print(f"| cold total (import + first parse) | {ms([a + b for a, b in zip(imports, parses)])} |")
    print(f"| warm parse | {ms(warm_parse)} |")
    print(f"| warm full load (with header) | {ms(warm_load)} |")


if __name__ == "__main__":
    main()
