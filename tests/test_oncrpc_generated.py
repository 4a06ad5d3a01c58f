"""What the generator writes for RFC 5531 program blocks, and the runtime's own generated modules.

- xdrgen/runtime/oncrpc/rpc_prot.py and rpcb_prot.py are exactly what xdrgen
  generates from the runtime's .x files today;
- generated modules stay lean: importing one loads neither asyncio nor
  threading nor the ONC RPC runtime, which load when a client is made;
- class and method naming, parameters, the handler's defaults;
- mypy --strict accepts the client, handler and server code generated from
  Debian's rpcsvc files, and code that uses it.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from mypy import api

from peers.oncrpc_fixtures import demo  # noqa: F401  (fixture)
from reference.harness import REPO_ROOT, generate_module

RUNTIME = REPO_ROOT / "xdrgen" / "runtime" / "oncrpc"
SM_INTER = Path("/usr/include/rpcsvc/sm_inter.x")
MOUNT = Path("/usr/include/rpcsvc/mount.x")


def rpcsvc(path: Path) -> Path:
    if path.is_file():
        return path
    import os

    message = f"{path} not found (Debian package rpcsvc-proto)"
    if os.environ.get("XDRGEN_REQUIRE_SHARED") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("stem", ["rpc_prot", "rpcb_prot"])
def test_committed_runtime_modules_are_what_xdrgen_generates(stem: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xdrgen.cli", "generate", str(RUNTIME / f"{stem}.x"), "-o", str(tmp_path), "--no-cache"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    fresh = (tmp_path / f"{stem}.py").read_text()
    committed = (RUNTIME / f"{stem}.py").read_text()
    assert fresh == committed, f"xdrgen/runtime/oncrpc/{stem}.py is stale: xdrgen generate {stem}.x -o xdrgen/runtime/oncrpc/"


def _probe(outdir: Path, module: str, after: str = "") -> list[str]:
    """Modules of interest loaded by importing ``module`` (python -S: no site imports)."""
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(REPO_ROOT)!r}, {str(outdir)!r}]\n"
        f"import {module} as m\n"
        "watch = ('asyncio', 'threading', 'socket', 'selectors', 'xdrgen.runtime.oncrpc', 'jinja2', 'ply', 'black')\n"
        "print(','.join(w for w in watch if w in sys.modules))\n"
        f"{after}\n"
        "print(','.join(w for w in watch if w in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_importing_a_generated_module_loads_no_rpc_runtime(tmp_path: Path) -> None:
    generate_module(rpcsvc(SM_INTER), tmp_path)  # checks that it generates and imports
    subprocess.run(
        [sys.executable, "-m", "xdrgen.cli", "generate", str(SM_INTER), "-o", str(tmp_path), "--module", "sm_inter"],
        check=True, capture_output=True,
    )
    make_client = (
        "c = m.SmProg1Client\n"
        "import socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "client = m.SmProg1Client.connect_tcp('127.0.0.1', s.getsockname()[1])\n"
        "client.close()"
    )
    before, after = _probe(tmp_path, "sm_inter", make_client)
    assert before == ""  # marshalling needs none of them
    assert {"threading", "socket", "xdrgen.runtime.oncrpc"} <= set(after.split(","))


def test_the_runtime_package_itself_imports_no_transport() -> None:
    before, _ = _probe(RUNTIME, "xdrgen.runtime.oncrpc.rpcb_prot")
    assert not {"asyncio", "threading", "socket", "selectors"} & set(before.split(","))


def test_client_and_handler_shapes(demo: ModuleType) -> None:
    for name in ("DemoRpcProgram1Client", "DemoRpcProgram1AsyncClient", "DemoRpcProgram1Handler",
                 "DemoRpcProgram1Server", "DemoRpcProgram2Client", "DemoRpcProgram2AsyncClient",
                 "DemoRpcProgram2Handler", "DemoRpcProgram2Server"):
        assert hasattr(demo, name), name
    client, aclient, handler = demo.DemoRpcProgram2Client, demo.DemoRpcProgram2AsyncClient, demo.DemoRpcProgram2Handler
    assert (client.program, client.version) == (0x20005EED, 2)

    def params(function: Callable[..., object]) -> list[str]:
        return list(inspect.signature(function).parameters)

    # rpcgen -N style: positional arguments, none for void, and the per-call timeout.
    assert params(client.demo_add) == ["self", "arg1", "arg2", "rpc_timeout"]
    assert params(client.demo_find) == ["self", "arg1", "arg2", "arg3", "rpc_timeout"]
    assert params(client.demo_lookup) == ["self", "arg", "rpc_timeout"]
    assert params(client.demo_first_name) == ["self", "rpc_timeout"]
    assert inspect.signature(client.demo_add).parameters["rpc_timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.iscoroutinefunction(aclient.demo_add) and not inspect.iscoroutinefunction(client.demo_add)
    # The handler has every procedure but NULL, as a coroutine with the same arguments.
    assert not hasattr(handler, "demo_null") and hasattr(client, "demo_null")
    assert params(handler.demo_find) == ["self", "arg1", "arg2", "arg3"]
    assert all(inspect.iscoroutinefunction(getattr(handler, n)) for n in ("demo_add", "demo_configure"))
    assert inspect.signature(client.demo_configure).return_annotation == "None"
    assert inspect.signature(client.demo_find).return_annotation == "demo_item_ptr"


def test_names_that_would_clash_get_an_underscore(tmp_path: Path) -> None:
    x = tmp_path / "clash.x"
    x.write_text(
        "program CLASH_PROG { version CLASH_V { void CLOSE(void) = 1; int CREATE(int) = 2;"
        " int LAMBDA(int, int) = 3; void CONNECTION(void) = 4; } = 7; } = 0x30000001;\n"
    )
    mod = generate_module(x, tmp_path / "out")
    c = mod.ClashProg7Client
    assert {"close_", "create_", "lambda_", "connection_"} <= set(vars(c))
    assert callable(c.close) and isinstance(vars(c)["create"], classmethod)


def test_generated_rpcsvc_modules_pass_mypy_strict(tmp_path: Path) -> None:
    files = []
    for source in (rpcsvc(SM_INTER), rpcsvc(MOUNT)):
        result = subprocess.run(
            [sys.executable, "-m", "xdrgen.cli", "generate", str(source), "-o", str(tmp_path)],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stderr
        files.append(str(tmp_path / f"{source.stem}.py"))
    usage = tmp_path / "usage.py"
    usage.write_text(
        "from __future__ import annotations\n"
        "import sm_inter\n\n\n"
        "class Handler(sm_inter.SmProg1Handler):\n"
        "    async def sm_stat(self, arg: sm_inter.sm_name) -> sm_inter.sm_stat_res:\n"
        "        return sm_inter.sm_stat_res(res_stat=sm_inter.res.stat_succ, state=arg.mon_name.count('x'))\n\n\n"
        "def ask(c: sm_inter.SmProg1Client) -> int:\n"
        "    return c.sm_stat(sm_inter.sm_name(mon_name='x'), rpc_timeout=1.0).state\n\n\n"
        "async def ask_async(c: sm_inter.SmProg1AsyncClient) -> int:\n"
        "    return (await c.sm_stat(sm_inter.sm_name(mon_name='x'))).state\n"
    )
    files.append(str(usage))
    stdout, stderr, status = api.run(
        ["--strict", "--python-version=3.11", "--config-file=", f"--cache-dir={tmp_path / '.mypy_cache'}",
         "--no-error-summary", "--show-error-codes", *files]
    )
    assert "error" not in stderr, stderr
    # Errors in the ONC RPC sections (from their marker on) or in the code using them.
    # (The type and marshaller sections above the marker are the rest of the generator's.)
    starts = {}
    for f in files[:-1]:
        lines = Path(f).read_text().splitlines()
        starts[Path(f).name] = next(i for i, line in enumerate(lines, 1) if line.startswith("# ONC RPC (RFC 5531)"))
    ours = []
    for line in stdout.splitlines():
        path, _, rest = line.partition(":")
        number = rest.partition(":")[0]
        name = Path(path).name
        if ": error:" in line and (name == "usage.py" or (number.isdigit() and int(number) >= starts.get(name, 0))):
            ours.append(line)
    assert not ours, "\n".join(ours)
