"""Reference-count check of the compiled engine, run BY a debug CPython (python3.11d).

    python3.11d tests/engine_refcount_driver.py CASES.json

Started by tests/engine_refcount.py, which generates the modules, draws valid
encodings of every type and builds the engine for this interpreter.  This file
imports only the standard library, ``xdrgen.runtime`` and the generated modules
(a debug interpreter has no PLY, Jinja2, Hypothesis or pytest).

For every type: decode, encode, encode_into and decode_from of valid values;
decode and decode_from of damaged bytes (truncated, extended, words replaced by
huge lengths and discriminants no arm takes); encode and encode_into of invalid
values (a field, or the value itself, replaced by values of the wrong kind or
range, an unset field).  Every failure goes through the engine's fallback to the
pure code.  Then the special cases of tests/engine_refcount_special.py (on the
edges module and on every module's plans) are measured the same way.  After a warm-up, ``sys.gettotalrefcount()`` and
``sys.getallocatedblocks()`` are read around N rounds and then around 2N rounds:
a one-time cache shows in the first window only, a leak in both, twice as large
in the second.  The result is JSON on stdout.
"""

from __future__ import annotations

import copy
import gc
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import engine_refcount_special as special
import xdrgen.runtime
from xdrgen.runtime.engine import backend
from xdrgen.runtime.errors import XdrError

ENGINE_MODULE = "xdrgen.runtime._engine"

#: Words written over the encoding, one at a time: huge and negative lengths,
#: discriminants and enum values no arm or member takes.
HOSTILE_WORDS = (0xFFFFFFFF, 0x40000000, 0x00000063)
#: Windows that confirm a growth seen over N and 2N rounds: CONFIRM * N and twice that.
CONFIRM = 20
#: Word positions replaced (from the start; the first words hold most lengths
#: and discriminants).
WORD_POSITIONS = 8


class _Opaque:
    """An object no field accepts."""


#: Values no field of the type they replace accepts, or only some do: every kind,
#: out of range, lone surrogates, duck types the engine declines.
BAD_VALUES: tuple[object, ...] = (
    None,
    _Opaque(),
    2**70,
    -(2**70),
    -1,
    1.5,
    True,
    special.IntLike(),
    "x" * 300,
    "\udc80",
    b"\xff" * 5,
    bytearray(3),
    memoryview(b"abcd"),
    [None],
    ["x", 2**40],
)
#: What replaces each field: fewer kinds (types have up to ~40 fields).
BAD_FIELDS: tuple[object, ...] = (None, _Opaque(), 2**70, "\udc80")
#: What replaces each field of a field.
BAD_INNER: tuple[object, ...] = (_Opaque(),)


def load_engine(path: str) -> Any:
    """The engine built for this interpreter at ``path``, as ``xdrgen.runtime._engine``
    (before any generated module asks for it)."""
    spec = importlib.util.spec_from_file_location(ENGINE_MODULE, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[ENGINE_MODULE] = module
    xdrgen.runtime._engine = module
    return module


# -- inputs -------------------------------------------------------------------------


def damaged(data: bytes) -> Iterator[bytes]:
    """Truncated, extended and word-replaced versions of a valid encoding."""
    for cut in (0, len(data) // 2, len(data) - 4, len(data) - 1):
        if 0 <= cut < len(data):
            yield data[:cut]
    yield data + b"\0\0\0\1"
    for index in range(0, min(len(data) // 4, WORD_POSITIONS) * 4, 4):
        for word in HOSTILE_WORDS:
            changed = data[:index] + word.to_bytes(4, "big") + data[index + 4 :]
            yield changed
        yield changed[:-4]


def _slots(value: object) -> list[str]:
    return [s for klass in type(value).__mro__ for s in getattr(klass, "__slots__", ())]


def invalid(value: object, depth: int = 0) -> Iterator[object]:
    """``value`` itself replaced, each field replaced (two levels deep), an element
    added to a list, an instance with no field set."""
    if depth == 0:
        yield from BAD_VALUES
    if isinstance(value, list) and value:
        yield [*value, _Opaque()]
        for inner in invalid(value[0], depth + 1):
            yield [inner, *value[1:]]
        return
    slots = _slots(value)
    if not slots:
        return
    yield type(value).__new__(type(value))
    for slot in slots:
        if not hasattr(value, slot):
            continue
        replacements = [*(BAD_FIELDS if depth == 0 else BAD_INNER)]
        if depth < 1:
            replacements += invalid(getattr(value, slot), depth + 1)
        for bad in replacements:
            changed = copy.copy(value)
            setattr(changed, slot, bad)
            yield changed


class Case:
    """What one type's codec is put through in one round."""

    def __init__(self, codec: Any, encodings: list[bytes]) -> None:
        self.codec = codec
        longest = sorted(encodings, key=len, reverse=True)
        self.valid = [(data, codec.decode(data), b"\0" * 8 + data + b"tail") for data in longest]
        #: Decoded instances left out of the cyclic GC: an atomic type (decode.c).
        self.atomic = bool(_slots(self.valid[0][1])) and not gc.is_tracked(self.valid[0][1])
        self.damaged = list(dict.fromkeys(damaged(longest[0])))
        # From the longest value: the one with the most list elements and arms.
        self.invalid = list(invalid(self.valid[0][1]))
        #: Exceptions other than XdrError (a defect of their own), by repr.
        self.unexpected: dict[str, None] = {}
        #: Inputs refused with an XdrError, i.e. that take the fallback to pure code.
        self.failing = sum(self._attempt(codec.decode, data) for data in self.damaged) + sum(
            self._attempt(codec.encode, bad) for bad in self.invalid
        )

    def operations(self) -> int:
        return 4 * len(self.valid) + 2 * len(self.damaged) + 2 * len(self.invalid)

    def run(self, rounds: int) -> None:
        codec = self.codec
        for _ in range(rounds):
            for data, value, framed in self.valid:
                codec.decode(data)
                codec.encode(value)
                codec.encode_into(bytearray(b"head"), value)
                codec.decode_from(framed, 8)
            for data in self.damaged:
                self._attempt(codec.decode, data)
                self._attempt(codec.decode_from, data, 0)
            for bad in self.invalid:
                self._attempt(codec.encode, bad)
                self._attempt(codec.encode_into, bytearray(b"keep"), bad)

    def _attempt(self, call: Callable[..., object], *args: object) -> bool:
        """Whether ``call`` refused its input with an XdrError."""
        try:
            call(*args)
        except XdrError:
            return True
        except Exception as error:  # noqa: BLE001 - a defect, reported with the figures
            self.unexpected[f"{type(error).__name__}: {error}"[:200]] = None
        return False


class Leaky:
    """The control: a case that keeps what it decodes, so that the check is seen to
    catch a leak of objects the engine made."""

    def __init__(self, codec: Any, data: bytes) -> None:
        self.codec, self.data = codec, data
        self.kept: list[object] = []
        self.unexpected: dict[str, None] = {}
        self.failing = 0

    def operations(self) -> int:
        return 1

    def run(self, rounds: int) -> None:
        for _ in range(rounds):
            self.kept.append(self.codec.decode(self.data))


def control_case(cases: list[tuple[str, str, Case]]) -> Leaky:
    """The control, on the first type whose decoding makes a new object each time."""
    for _, _, case in cases:
        for data, _, _ in case.valid:
            if case.codec.decode(data) is not case.codec.decode(data):
                return Leaky(case.codec, data)
    raise SystemExit("no type to run the control on")


# -- measuring ----------------------------------------------------------------------


class Runner(Protocol):
    unexpected: dict[str, None]
    failing: int

    def run(self, rounds: int) -> None: ...

    def operations(self) -> int: ...


def window(case: Runner, rounds: int) -> tuple[int, int]:
    """Growth of the total reference count and of allocated blocks over ``rounds``."""
    gc.collect()
    refs, blocks = sys.gettotalrefcount(), sys.getallocatedblocks()
    case.run(rounds)
    gc.collect()
    return sys.gettotalrefcount() - refs, sys.getallocatedblocks() - blocks


class Idle:
    """Nothing: what reading the counters itself adds (subtracted from every window)."""

    unexpected: dict[str, None] = {}
    failing = 0

    def run(self, rounds: int) -> None:
        pass

    def operations(self) -> int:
        return 0


def windows(case: Runner, sizes: tuple[int, int], offset: tuple[int, int]) -> dict[str, list[int]]:
    """Growth of both counters over consecutive windows of ``sizes`` rounds."""
    first, second = window(case, sizes[0]), window(case, sizes[1])
    return {
        "refs": [first[0] - offset[0], second[0] - offset[0]],
        "blocks": [first[1] - offset[1], second[1] - offset[1]],
    }


def leaks(first: list[int], confirmed: list[int], rounds: int) -> bool:
    """A leak grows with the rounds: some growth in the N-round window and more in
    the 2N one, then at least one per round over CONFIRM * N rounds, and half as
    much again over twice that.  A one-time cache grows in the first window only;
    one that fills over many rounds (CPython's type attribute cache holds up to
    4096 names) stops growing."""
    if not (first[0] > 0 and first[1] > first[0]):
        return False
    return confirmed[0] >= CONFIRM * rounds and 2 * confirmed[1] >= 3 * confirmed[0]


def measure(case: Runner, rounds: int, warmup: int, offset: tuple[int, int]) -> dict[str, Any]:
    case.run(warmup)
    deltas = windows(case, (rounds, 2 * rounds), offset)
    result: dict[str, Any] = {"operations": case.operations(), "failing": case.failing, **deltas}
    suspect = [c for c, d in deltas.items() if d[0] > 0 and d[1] > d[0]]
    result["leak"] = {counter: False for counter in deltas}
    if suspect:
        confirm = windows(case, (CONFIRM * rounds, 2 * CONFIRM * rounds), offset)
        result["confirm"] = confirm
        for counter in suspect:
            result["leak"][counter] = leaks(deltas[counter], confirm[counter], rounds)
    result["unexpected"] = list(case.unexpected)
    return result


#: Generated modules also executed again into fresh module objects (the others are
#: only installed again).  Not demo's: executing it grows the total reference
#: count by ~28 each time with or without the engine (XDRGEN_PURE=1 too), from its
#: stream-call class statement, i.e. in Python code, not the engine's.
EXECUTED = ("edges", "nfs_prot.x", "rpcb_prot.x")


def special_cases(engine: Any, modules: dict[str, Any]) -> dict[str, special.Calls]:
    """tests/engine_refcount_special.py's cases, by name (the ones on the edges
    module when it is checked)."""
    cases: dict[str, special.Calls] = {}
    edges = modules.get("edges")
    if edges is not None:
        cases.update(special.nesting(edges, engine.MAX_DEPTH))
        cases["XdrEngineMismatch"] = special.mismatch(engine)
        cases.update(special.declined(edges))
        cases["install unrunnable plans"] = special.unrunnable(engine)
    for protocol, module in modules.items():
        cases[f"install {protocol}"] = special.install(engine, module)
        if protocol in EXECUTED:
            cases[f"exec {protocol}"] = special.execute(module)
    return cases


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    if not hasattr(sys, "gettotalrefcount"):
        raise SystemExit(f"{sys.executable} is not a debug build (no sys.gettotalrefcount)")
    engine = load_engine(config["engine"])
    rounds, warmup = config["rounds"], config["warmup"]
    sys.path[:0] = [entry["path"] for entry in config["modules"]]
    cases: list[tuple[str, str, Case]] = []
    not_engine: list[str] = []
    modules = {}
    for entry in config["modules"]:
        module = modules[entry["protocol"]] = importlib.import_module(entry["module"])
        for type_name, encodings in entry["types"].items():
            codec = module.XDR_TYPES[type_name]
            if backend(codec) != "engine":
                not_engine.append(f"{entry['protocol']}:{type_name}")
            case = Case(codec, [bytes.fromhex(e) for e in encodings])
            cases.append((entry["protocol"], type_name, case))
    # Everything made so far lives to the end: collections then walk only new objects.
    runners = special_cases(engine, modules)
    gc.collect()
    gc.freeze()
    window(Idle(), 1)
    offset = window(Idle(), 1)

    control = measure(control_case(cases), rounds, warmup, offset)
    results = []
    for protocol, type_name, case in cases:
        result = measure(case, rounds, warmup, offset)
        results.append({"protocol": protocol, "type": type_name, "atomic": case.atomic, **result})
    specials = []
    for name, runner in runners.items():
        result = measure(runner, rounds, warmup, offset)
        specials.append({"protocol": "special", "type": name, **result})
    json.dump(
        {
            "python": sys.version,
            "engine": engine.__file__,
            "rounds": rounds,
            "warmup": warmup,
            "offset": offset,
            "not_engine": not_engine,
            "control": control,
            "results": results,
            "special": specials,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
