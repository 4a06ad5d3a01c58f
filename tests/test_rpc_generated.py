"""Shape and behaviour of the generated libvirt-style clients and server skeletons.

A small libvirt-style protocol written here exercises every generated shape
(calls, defaults, ``_with`` twins, read streams with a sparse flag, events
routed by callbackID, the handler base, the dispatch table) without the
upstream files; the generated client and server then talk to each other over
a unix socket.  Against real peers, see test_libvirt_client.py and
test_virsh_server.py.  mypy --strict and black run over the generated code.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import REPO_ROOT, require_shared
from xdrgen.frontend import load
from xdrgen.frontend.options import FrontendOptions
from xdrgen.generator.render import render_module
from xdrgen.runtime.virnet.errors import LibvirtError, NotSupportedError

DEMO_X = """\
const DEMO_STRING_MAX = 4096;
typedef string demo_nonnull_string<DEMO_STRING_MAX>;
typedef demo_nonnull_string *demo_string;
const DEMO_PROGRAM = 0x20009999;
const DEMO_PROTOCOL_VERSION = 1;
const DEMO_DOWNLOAD_SPARSE = 4;

struct demo_thing { demo_nonnull_string name; int id; };

struct demo_open_args { demo_string name; unsigned int flags; };
struct demo_lookup_args { demo_nonnull_string name; };
struct demo_lookup_ret { demo_thing thing; };
struct demo_get_version_ret { unsigned hyper ver; };
struct demo_download_args { demo_thing thing; unsigned hyper offset; unsigned int flags; };
struct demo_download_ret { demo_nonnull_string mime; };
struct demo_event_thing_msg { int callbackID; demo_thing thing; int detail; };
struct demo_set_timeout_args { int timeout; unsigned int flags; };

enum demo_procedure {
    /** @generate: both */
    DEMO_PROC_OPEN = 1,
    /** @generate: both */
    DEMO_PROC_GET_VERSION = 2,
    /** @generate: both */
    DEMO_PROC_LOOKUP = 3,
    /**
     * @generate: both
     * @readstream: 1
     * @sparseflag: DEMO_DOWNLOAD_SPARSE
     */
    DEMO_PROC_DOWNLOAD = 4,
    /** @generate: both */
    DEMO_PROC_EVENT_THING = 5,
    /** @generate: both */
    DEMO_PROC_CLOSE = 6,
    /** @generate: both */
    DEMO_PROC_SET_TIMEOUT = 7
};
"""

PAYLOAD = bytes(range(256)) * 1500  # 384000 bytes: more than one stream chunk


def generate(x_text: str, name: str, out_dir: Path) -> tuple[Path, ModuleType]:
    src = out_dir / f"{name}.x"
    src.write_text(x_text)
    model = load(src, FrontendOptions())
    path = out_dir / f"{name}.py"
    path.write_text(render_module(model, name))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return path, module


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModuleType]:
    return generate(DEMO_X, "demo_rpc", tmp_path_factory.mktemp("demo"))


# ------------------------------------------------------------------ shapes


def test_client_methods_take_the_args_fields(demo: tuple[Path, ModuleType]) -> None:
    _, m = demo
    for cls in (m.DemoClient, m.DemoAsyncClient):
        sig = inspect.signature(cls.open)
        params = sig.parameters
        assert list(params) == ["self", "name", "flags", "rpc_timeout"]
        # Trailing optional string and flags may be left out.
        assert params["name"].default is None and params["flags"].default == 0
        assert params["rpc_timeout"].kind is inspect.Parameter.KEYWORD_ONLY
        assert list(inspect.signature(cls.lookup).parameters) == ["self", "name", "rpc_timeout"]
        assert inspect.signature(cls.lookup).parameters["name"].default is inspect.Parameter.empty
        assert list(inspect.signature(cls.lookup_with).parameters) == ["self", "args", "rpc_timeout"]
        assert list(inspect.signature(cls.get_version).parameters) == ["self", "rpc_timeout"]
        # A field named like an option keeps its name, the option is separate.
        assert list(inspect.signature(cls.set_timeout).parameters) == ["self", "timeout", "flags", "rpc_timeout"]
        assert "two_way" in inspect.signature(cls.download).parameters
        assert "sparse" not in inspect.signature(cls.download).parameters  # derived from flags
        assert not hasattr(cls, "event_thing")  # events are not calls...
        assert "callback_id" in inspect.signature(cls.on_event_thing).parameters  # ...but subscriptions
    # DEMO_PROC_CLOSE would shadow the client's own close(): it gets a trailing underscore.
    assert list(inspect.signature(m.DemoClient.close_).parameters) == ["self", "rpc_timeout"]
    assert list(inspect.signature(m.DemoClient.close).parameters) == ["self"]
    assert inspect.iscoroutinefunction(m.DemoAsyncClient.lookup)
    assert not inspect.iscoroutinefunction(m.DemoClient.lookup)
    assert "callback_id" in inspect.signature(m.DemoAsyncClient.event_thing_events).parameters


def test_handler_and_dispatch_table(demo: tuple[Path, ModuleType]) -> None:
    _, m = demo
    for name in ("open", "get_version", "lookup", "download", "close_", "set_timeout"):
        assert inspect.iscoroutinefunction(getattr(m.DemoHandler, name))
    assert list(inspect.signature(m.DemoHandler.download).parameters) == ["self", "call", "args"]
    assert hasattr(m.DemoHandler, "emit_event_thing")
    assert m._DEMO_DISPATCH[3][0] == "lookup"
    assert m._DEMO_DISPATCH[4][3] == 1  # server sends on a readstream
    assert m._DEMO_DISPATCH[2][1] is None  # void args
    assert 5 not in m._DEMO_DISPATCH  # an event is not callable


def test_generated_module_passes_mypy_strict_and_black(demo: tuple[Path, ModuleType]) -> None:
    path, _ = demo
    env = dict(os.environ, MYPYPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent", str(path)],
        capture_output=True, text=True, env=env, cwd=path.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-m", "black", "--check", "-q", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, "black would reformat the generated module"


def test_generated_code_imports_only_the_runtime(demo: tuple[Path, ModuleType]) -> None:
    path, _ = demo
    for line in path.read_text().splitlines():
        if line.startswith(("import ", "from ")) and "xdrgen" in line:
            assert line.startswith("from xdrgen.runtime"), line


def test_remote_protocol_rpc_section_is_mypy_clean(tmp_path: Path) -> None:
    """mypy --strict over libvirt's generated module: no error in the RPC sections."""
    x = require_shared("libvirt/remote_protocol.x")
    header = Path("/usr/include/libvirt/libvirt.h")
    if not header.is_file():
        pytest.skip("libvirt.h not installed (libvirt-dev)")
    model = load(x, FrontendOptions(constants_from=(header,)))
    text = render_module(model, "remote_protocol")
    path = tmp_path / "remote_protocol.py"
    path.write_text(text)
    first = text.splitlines().index("# libvirt RPC: typed clients (blocking and asyncio) and server skeletons.") + 1
    env = dict(os.environ, MYPYPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent", str(path)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    ours = [line for line in done.stdout.splitlines()
            if line.startswith(str(path) + ":") and int(line.split(":")[1]) >= first]
    assert ours == []
    for name in ("RemoteClient", "RemoteAsyncClient", "RemoteHandler", "RemoteServer"):
        assert f"\nclass {name}" in text


# ------------------------------------------------------------ behaviour


def make_handler(m: ModuleType) -> Any:
    class Handler(m.DemoHandler):  # type: ignore[misc,name-defined]
        async def open(self, args: Any) -> None:
            self.opened = args.name

        async def get_version(self) -> Any:
            return m.demo_get_version_ret(1234)

        async def lookup(self, args: Any) -> Any:
            if args.name == "missing":
                raise LibvirtError(42, 12, f"no thing named {args.name}")
            self.emit_event_thing(m.demo_event_thing_msg(7, m.demo_thing(args.name, 1), 1))
            self.emit_event_thing(m.demo_event_thing_msg(8, m.demo_thing(args.name, 1), 2))
            return m.demo_lookup_ret(m.demo_thing(args.name, len(args.name)))

        async def download(self, call: Any, args: Any) -> None:
            stream = call.accept(m.demo_download_ret("application/octet-stream"), sparse=bool(args.flags & 4))
            await stream.send(PAYLOAD[args.offset :])
            await stream.send_eof()

    return Handler


@pytest.fixture
def server(demo: tuple[Path, ModuleType]) -> Iterator[str]:
    """The generated server in a background event loop; yields its socket path."""
    _, m = demo
    root = tempfile.mkdtemp(prefix="xr", dir="/tmp")
    path = os.path.join(root, "sock")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        holder["server"] = await m.DemoServer(make_handler(m)).serve_unix(path)
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield path

    async def stop() -> None:
        holder["server"].close()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    assert not os.path.exists(path), "the server left its socket file behind"
    os.rmdir(root)


def test_sync_client_against_generated_server(demo: tuple[Path, ModuleType], server: str) -> None:
    _, m = demo
    with m.DemoClient.connect_unix(server) as c:
        c.open(name="demo:///")
        assert c.get_version().ver == 1234
        events: list[Any] = []
        done = threading.Event()

        def on_event(msg: object) -> None:
            events.append(msg)
            done.set()

        c.on_event_thing(on_event, callback_id=8)
        thing = c.lookup("abc").thing
        assert (thing.name, thing.id) == ("abc", 3)
        assert done.wait(10)
        assert [(e.callbackID, e.detail) for e in events] == [(8, 2)]  # callbackID 7 routed elsewhere
        ret, stream = c.download(m.demo_thing("abc", 3), offset=100)
        assert ret.mime == "application/octet-stream" and not stream.sparse
        data = b"".join(bytes(chunk) for chunk in stream)
        stream.finish(10)
        assert data == PAYLOAD[100:]
        _, sparse_stream = c.download_with(m.demo_download_args(m.demo_thing("abc", 3), 0, 4))
        assert sparse_stream.sparse  # @sparseflag DEMO_DOWNLOAD_SPARSE set in flags
        sparse_stream.abort(10)


def test_errors_match_libvirtd(demo: tuple[Path, ModuleType], server: str) -> None:
    _, m = demo
    with m.DemoClient.connect_unix(server) as c:
        with pytest.raises(LibvirtError) as info:
            c.lookup("missing")
        assert (info.value.code, info.value.message) == (42, "no thing named missing")
        assert not isinstance(info.value, NotSupportedError)
        # Not implemented by the handler: libvirtd's "not supported by the driver".
        with pytest.raises(NotSupportedError) as unsupported:
            c.set_timeout(5)
        err = unsupported.value
        assert err.code == 3 and err.domain == 20
        assert err.message == "this function is not supported by the connection driver: virSetTimeout"
        # A number the table does not have: libvirtd's "unknown procedure".
        with pytest.raises(NotSupportedError, match="unknown procedure: 99") as unknown:
            c.connection.call(99, prog=0x20009999)
        assert unknown.value.code == 39
        # Arguments that do not decode: a typed RPC error naming the procedure, not a crash.
        with pytest.raises(LibvirtError, match="Unable to decode message payload: the arguments of procedure 3") as bad:
            c.connection.call(3, b"\x00\x00\x00\x10abc", prog=0x20009999)
        assert bad.value.code == 39
        assert c.get_version().ver == 1234  # the connection survives all of that


def test_async_client_pipelined_calls_and_event_iterator(demo: tuple[Path, ModuleType], server: str) -> None:
    _, m = demo

    async def run() -> None:
        async with await m.DemoAsyncClient.connect_unix(server) as c:
            names = [f"n{i:03d}" + "x" * (i % 7) for i in range(100)]
            things = await asyncio.gather(*(c.lookup(n) for n in names))
            assert [(t.thing.name, t.thing.id) for t in things] == [(n, len(n)) for n in names]
            events = c.event_thing_events(callback_id=7)
            first = asyncio.ensure_future(events.__anext__())
            await asyncio.sleep(0)  # let the iterator subscribe before the event is sent
            await c.lookup("evt")
            msg = await asyncio.wait_for(first, 10)
            assert (msg.callbackID, msg.thing.name, msg.detail) == (7, "evt", 1)
            await events.aclose()
            ret, stream = await c.download(m.demo_thing("x", 1), 0)
            data = bytearray()
            async for chunk in stream:
                data += chunk
            await stream.finish()
            assert ret.mime == "application/octet-stream" and bytes(data) == PAYLOAD

    asyncio.run(run())
