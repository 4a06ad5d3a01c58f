"""Run random schemas through xdrgen and rpcgen's C, batch by batch.

A batch is many schemas in one ``.x`` (their names are disjoint), so one
``xdrgen check``, one ``xdrgen generate`` and one rpcgen + gcc build serve all
of them.  When a batch-wide step fails, the batch is split in halves until the
schemas that fail it are found; the others still run.

Per schema, for its types in turn:

- valid encodings drawn by ``xdr_values.Encodings`` go through both sides
  (``rules.check_valid_encoding``);
- values built in Python (``schemafuzz.values``) are encoded by the generated
  code and read back by rpcgen's C (``rules.check_value``);
- damaged encodings (``xdr_values.mutations``) are accepted and rejected alike
  up to the documented deviations (``rules.check_damaged``, ``Scanner``);
- lone hostile lengths are refused by both (``rules.check_hostile_lengths``).
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from reference.harness import generate_module
from reference.rpcgen_ref import Reference, ReferenceError, build_reference
from reference.rules import (
    check_damaged,
    check_hostile_lengths,
    check_valid_encoding,
    check_value,
)
from schemafuzz.generate import Options, generate_schema
from schemafuzz.schema import Schema, render_batch
from schemafuzz.values import Values
from test_generate_encode_fuzz import fuzz_value
from xdr_values import Encodings, Scanner, mutations

#: rpcgen's inline code for fixed arrays of ``bool`` names the C type ``bool``,
#: which does not exist; mapping it to ``bool_t`` (what every other path uses)
#: makes those files compile.  -O0: the reference's speed does not matter here.
REFERENCE_CFLAGS = ("-O0", "-Dbool=bool_t")
#: Procedures may take several arguments (rpcgen's "new style").
REFERENCE_RPCGEN_FLAGS = ("-N",)

#: Stages, in the order a schema goes through them.
STAGES = (
    "rpcgen", "check", "generate", "mypy", "valid", "value", "wrong", "damaged",
    "procedures", "hostile",
)


@dataclass
class Failure:
    """One schema failing one stage: enough to reproduce it by hand."""

    seed: int
    stage: str
    message: str
    #: The ``.x`` text that failed (the schema alone, as it ran in its batch).
    source: str
    type_name: str | None = None
    data: bytes | None = None
    #: The shrunk ``.x``, when shrinking ran and got anywhere.
    shrunk: str | None = None

    def describe(self) -> str:
        lines = [f"schema seed {self.seed}: {self.stage} failed"]
        if self.type_name is not None:
            lines.append(f"type: {self.type_name}")
        if self.data is not None:
            lines.append(f"bytes: {self.data.hex() or '(empty)'}")
        lines += [f"error: {self.message}", "--- .x ---", self.source.rstrip()]
        if self.shrunk is not None:
            lines += ["--- shrunk .x ---", self.shrunk.rstrip()]
        return "\n".join(lines)


@dataclass
class Limits:
    """How much to run per schema."""

    #: Valid encodings, built values and damaged encodings per schema (each).
    values: int = 40
    #: Built values per schema broken in many ways (``test_generate_encode_fuzz``).
    wrong: int = 4
    #: Run ``mypy --strict`` on the generated modules.
    mypy: bool = False


@dataclass
class Totals:
    schemas: int = 0
    types: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    def add(self, other: Totals) -> None:
        self.schemas += other.schemas
        self.types += other.types
        self.counts.update(other.counts)
        for stage, seconds in other.seconds.items():
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.failures += other.failures

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        seconds = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(self.seconds.items()))
        return (
            f"{self.schemas} schemas, {self.types} types; checked: {counts}; "
            f"time: {seconds}; {len(self.failures)} failures"
        )


@dataclass
class Prepared:
    """A group of schemas with its model, generated module and running reference."""

    schemas: list[Schema]
    x_file: Path
    model: Any
    module: ModuleType
    reference: Reference


class StageFailed(Exception):
    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


# -- preparing a group ---------------------------------------------------------------


def _timed(totals: Totals, stage: str) -> Callable[[], None]:
    started = time.perf_counter()

    def done() -> None:
        totals.seconds[stage] = (
            totals.seconds.get(stage, 0.0) + time.perf_counter() - started
        )

    return done


def xdrgen_check(x_file: Path) -> str | None:
    """``xdrgen check`` through the CLI, as a user runs it: None or its output."""
    result = subprocess.run(
        [sys.executable, "-m", "xdrgen.cli", "check", str(x_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return (result.stdout + result.stderr)[-4000:]
    return None


def prepare_file(
    x_file: Path, workdir: Path, totals: Totals
) -> tuple[Any, ModuleType, Reference]:
    """rpcgen + gcc, ``xdrgen check``, the model and the generated module of one file.

    Raises StageFailed naming the first stage that fails: rpcgen first, so that a
    schema rpcgen rejects is reported as the fuzzer's own mistake, not xdrgen's.
    """
    from xdrgen.frontend import load

    done = _timed(totals, "rpcgen")
    try:
        reference = build_reference(
            x_file, cflags=REFERENCE_CFLAGS, rpcgen_flags=REFERENCE_RPCGEN_FLAGS
        )
    except ReferenceError as error:
        raise StageFailed("rpcgen", str(error)[-4000:]) from None
    finally:
        done()
    try:
        done = _timed(totals, "check")
        problem = xdrgen_check(x_file)
        done()
        if problem is not None:
            raise StageFailed("check", problem)
        done = _timed(totals, "generate")
        try:
            model = load(x_file)
            module = generate_module(x_file, workdir / "out")
        except Exception as error:  # noqa: BLE001 - reported as a failure
            raise StageFailed("generate", f"{type(error).__name__}: {error}"[-4000:]) from None
        finally:
            done()
    except StageFailed:
        reference.close()
        raise
    return model, module, reference


def prepare(schemas: list[Schema], workdir: Path, totals: Totals) -> Prepared:
    """Check, generate and build one group; raises StageFailed naming the stage."""
    x_file = workdir / f"fuzz_{schemas[0].seed}_{len(schemas)}.x"
    x_file.write_text(render_batch(schemas), encoding="utf-8")
    model, module, reference = prepare_file(x_file, workdir, totals)
    return Prepared(schemas, x_file, model, module, reference)


def _groups(
    schemas: list[Schema], workdir: Path, totals: Totals
) -> Iterator[Prepared]:
    """Prepared groups covering ``schemas``; failing schemas become failures.

    A group that fails while each of its halves passes is a failure too (of the
    schemas together), reported under its first seed with the whole ``.x``.
    """
    try:
        yield prepare(schemas, workdir, totals)
        return
    except StageFailed as failed:
        whole = failed
    if len(schemas) == 1:
        totals.failures.append(
            Failure(schemas[0].seed, whole.stage, whole.message, schemas[0].render())
        )
        return
    before = len(totals.failures)
    middle = len(schemas) // 2
    yield from _groups(schemas[:middle], workdir, totals)
    yield from _groups(schemas[middle:], workdir, totals)
    if len(totals.failures) == before:
        totals.failures.append(_together(schemas, whole.stage, whole.message))


def _together(schemas: list[Schema], stage: str, message: str) -> Failure:
    seeds = f"{schemas[0].seed}..{schemas[-1].seed}"
    return Failure(
        schemas[0].seed,
        stage,
        f"only the schemas {seeds} together fail: {message}",
        render_batch(schemas),
    )


# -- mypy ---------------------------------------------------------------------------


def mypy_problems(module_files: Sequence[Path], cache_dir: Path) -> str | None:
    """``mypy --strict`` on generated modules: None when clean, else its report.

    A child process, so that mypy's memory (hundreds of MB on a large batch) is
    returned when it ends.
    """
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-version=3.11",
            "--config-file=",
            f"--cache-dir={cache_dir}",
            "--no-error-summary",
            *map(str, module_files),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        return None
    return (result.stdout + result.stderr)[-4000:]


def _mypy_group(
    prepared: Prepared, schemas: list[Schema], workdir: Path, totals: Totals
) -> None:
    """mypy over the group's module; on errors, find the schemas that cause them."""
    module_file = Path(prepared.module.__file__ or "")
    done = _timed(totals, "mypy")
    problem = mypy_problems([module_file], workdir / ".mypy_cache")
    done()
    totals.counts["mypy modules"] += 1
    if problem is None:
        return
    if len(schemas) == 1:
        totals.failures.append(Failure(schemas[0].seed, "mypy", problem, schemas[0].render()))
        return
    before = len(totals.failures)
    middle = len(schemas) // 2
    for half in (schemas[:middle], schemas[middle:]):
        try:
            sub = prepare(half, workdir, totals)
        except StageFailed as failed:  # pragma: no cover - passed as part of the whole
            raise AssertionError(f"a half of a prepared group fails {failed}") from None
        try:
            _mypy_group(sub, half, workdir, totals)
        finally:
            sub.reference.close()
    if len(totals.failures) == before:
        totals.failures.append(_together(schemas, "mypy", problem))


# -- checks ----------------------------------------------------------------------------


def _hypothesis_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def _draw_checks(
    types: list[str],
    seed: int,
    strategy_of: Callable[[str], st.SearchStrategy[bytes]],
    check: Callable[[str, bytes], None],
    examples: int,
    salt: int,
) -> tuple[int, tuple[str, bytes, BaseException] | None]:
    """Run ``check`` on ``examples`` encodings drawn over ``types``."""
    ran = 0
    current: list[tuple[str, bytes]] = []
    if examples <= 0:
        return 0, None

    @hypothesis_seed(seed * 16 + salt)
    @_hypothesis_settings(examples)
    @given(st.sampled_from(types).flatmap(lambda t: st.tuples(st.just(t), strategy_of(t))))
    def run(case: tuple[str, bytes]) -> None:
        nonlocal ran
        ran += 1
        current[:] = [case]
        check(*case)

    try:
        run()
    except Exception as error:  # noqa: BLE001 - reported as a failure
        type_name, data = current[0] if current else ("?", b"")
        return ran, (type_name, data, error)
    return ran, None


def _message(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) < 4000 else text[:4000] + " ..."


class ProcedureMismatch(AssertionError):
    def __init__(self, message: str, type_name: str) -> None:
        super().__init__(message)
        self.type_name = type_name


def check_procedures(
    model: Any,
    module: ModuleType,
    reference: Reference,
    values: Values,
    seed: int,
    per_procedure: int,
) -> int:
    """Arguments of the programs' procedures, encoded by the generated procedure
    tables, against rpcgen -N's ``<proc>_<version>_argument`` struct (procedures of
    two or more arguments); returns the number of argument lists checked."""
    from xdrgen.generator.views import view_of

    checked = 0
    tables = {
        (table.program, table.version): table
        for table in module.PROCEDURE_TABLES.values()
        if table.style == "oncrpc"
    }
    for program in model.programs:
        if not program.name.startswith(f"F{seed}_"):
            continue  # another schema's program in the same batch
        for version in program.versions:
            table = tables[(program.number, version.number)]
            for proc in version.procedures:
                info = table.procedures[proc.number]
                if len(proc.args) != len(info.args):
                    raise ProcedureMismatch(
                        f"{proc.name}: {len(info.args)} argument codecs for "
                        f"{len(proc.args)} arguments",
                        proc.name,
                    )
                name = f"{proc.name.lower()}_{version.number}_argument"
                if len(proc.args) < 2 or name not in reference.type_names:
                    continue
                for _ in range(per_procedure):
                    args = [
                        values._view(view_of(a.kind, a.type, a.size), 0)
                        for a in proc.args
                    ]
                    data = b"".join(c.encode(v) for c, v in zip(info.args, args))
                    theirs = reference.roundtrip(name, data)
                    if not (theirs.decoded and theirs.reencoded == data):
                        raise ProcedureMismatch(
                            f"{proc.name}: rpcgen's {name} does not take the "
                            f"arguments {args!r} as encoded: {data.hex()} ({theirs})",
                            name,
                        )
                    offset = 0
                    for codec, value in zip(info.args, args):
                        _, offset = codec.decode_from(data, offset)
                    if offset != len(data):
                        raise ProcedureMismatch(
                            f"{proc.name}: arguments decode to {offset} of {len(data)}",
                            name,
                        )
                    checked += 1
    return checked


def check_schema(
    prepared: Prepared, schema: Schema, limits: Limits, totals: Totals
) -> list[Failure]:
    """All runtime checks of one schema of a prepared group."""
    return check_types(
        prepared.model,
        prepared.module,
        prepared.reference,
        schema.type_names(),
        schema.seed,
        schema.render(),
        limits,
        totals,
    )


def check_types(
    model: Any,
    module: ModuleType,
    reference: Reference,
    types: list[str],
    seed: int,
    source: str,
    limits: Limits,
    totals: Totals,
) -> list[Failure]:
    """Valid encodings, built values, damaged encodings and hostile lengths for
    ``types`` of one generated module against rpcgen's C (``seed`` seeds the draws)."""
    failures: list[Failure] = []

    def fail(stage: str, type_name: str | None, data: bytes | None, error: BaseException) -> None:
        failures.append(Failure(seed, stage, _message(error), source, type_name, data))

    def codec(type_name: str) -> Any:
        return module.XDR_TYPES[type_name]

    encodings = Encodings(model)
    scanner = Scanner(model)

    done = _timed(totals, "valid")
    ran, failed = _draw_checks(
        types,
        seed,
        encodings.of,
        lambda t, data: check_valid_encoding(reference, codec(t), t, data),
        limits.values,
        0,
    )
    done()
    totals.counts["valid"] += ran
    if failed is not None:
        fail("valid", *failed)

    done = _timed(totals, "value")
    values = Values(model, module, random.Random(seed))
    for index in range(limits.values):
        type_name = types[index % len(types)]
        value = None
        try:
            value = values.of(type_name)
            check_value(reference, codec(type_name), type_name, value)
        except Exception as error:  # noqa: BLE001 - reported as a failure
            data = None
            try:
                data = codec(type_name).encode(value)
            except Exception:  # noqa: BLE001 - the encode itself failed
                pass
            fail("value", type_name, data, error)
            break
        totals.counts["value"] += 1
    done()

    done = _timed(totals, "wrong")
    # Wrong values: each built value broken in a few places, one at a time (None, a
    # wrong class, out-of-range numbers, overlong lists, cycles...): encoding must
    # raise an XdrEncodeError naming the place, or give bytes that decode.
    wrong_rng = random.Random(seed)
    for index in range(min(limits.wrong, len(types) * 4)):
        type_name = types[index % len(types)]
        try:
            tried = fuzz_value(codec(type_name), values.of(type_name), wrong_rng)
        except Exception as error:  # noqa: BLE001 - reported as a failure
            fail("wrong", type_name, None, error)
            break
        totals.counts["wrong"] += tried
    done()

    done = _timed(totals, "damaged")
    ran, failed = _draw_checks(
        types,
        seed,
        lambda t: mutations(encodings.of(t)),
        lambda t, data: check_damaged(reference, codec(t), scanner, t, data),
        limits.values,
        1,
    )
    done()
    totals.counts["damaged"] += ran
    if failed is not None:
        fail("damaged", *failed)

    done = _timed(totals, "procedures")
    try:
        totals.counts["procedures"] += check_procedures(
            model, module, reference, values, seed, limits.values // 4
        )
    except Exception as error:  # noqa: BLE001 - reported as a failure
        fail("procedures", getattr(error, "type_name", None), None, error)
    done()

    done = _timed(totals, "hostile")
    for type_name in types:
        try:
            check_hostile_lengths(reference, codec(type_name), scanner, type_name)
        except Exception as error:  # noqa: BLE001 - reported as a failure
            fail("hostile", type_name, None, error)
            break
        totals.counts["hostile"] += 1
    done()
    return failures


# -- batches -------------------------------------------------------------------------


def schemas_for(seeds: Sequence[int], options: Options) -> list[Schema]:
    """The schemas of ``seeds`` as one batch (bare names unique across it)."""
    taken: set[str] = set()
    return [generate_schema(seed, options, taken) for seed in seeds]


def run_batch(
    seeds: Sequence[int],
    options: Options = Options(),
    limits: Limits = Limits(),
    workdir: Path | None = None,
) -> Totals:
    """Generate, prepare and check one batch of schemas; never raises for a defect."""
    totals = Totals()
    schemas = schemas_for(seeds, options)
    totals.schemas = len(schemas)
    totals.types = sum(len(s.type_names()) for s in schemas)
    with tempfile.TemporaryDirectory(prefix="schemafuzz-") as tmp:
        work = workdir or Path(tmp)
        for prepared in _groups(schemas, work, totals):
            try:
                for schema in prepared.schemas:
                    totals.failures += check_schema(prepared, schema, limits, totals)
                if limits.mypy:
                    _mypy_group(prepared, prepared.schemas, work, totals)
            finally:
                prepared.reference.close()
    return totals


# -- reproducing and shrinking -----------------------------------------------------------


def failures_of(schema: Schema, limits: Limits, stages: frozenset[str] | None = None) -> list[Failure]:
    """Run one schema on its own; its failures (only ``stages`` when given)."""
    totals = Totals()
    with tempfile.TemporaryDirectory(prefix="schemafuzz-one-") as tmp:
        work = Path(tmp)
        try:
            prepared = prepare([schema], work, totals)
        except StageFailed as failed:
            if stages is not None and failed.stage not in stages:
                return []  # fails otherwise (e.g. a shrink step rpcgen rejects)
            return [Failure(schema.seed, failed.stage, failed.message, schema.render())]
        try:
            wanted = stages or frozenset(STAGES)
            if wanted & {"valid", "value", "wrong", "damaged", "procedures", "hostile"}:
                totals.failures += check_schema(prepared, schema, limits, totals)
            if "mypy" in wanted:
                _mypy_group(prepared, [schema], work, totals)
        finally:
            prepared.reference.close()
    return [f for f in totals.failures if stages is None or f.stage in stages]


def shrink_failure(
    failure: Failure, schema: Schema, limits: Limits, *, budget: float = 300.0
) -> tuple[Schema, int]:
    """The smallest variant of ``schema`` that still fails ``failure``'s stage."""
    from schemafuzz.shrink import shrink

    stages = frozenset({failure.stage})
    # More values per probe: the failing value itself does not survive a change of schema.
    probe_limits = Limits(values=max(limits.values, 200), mypy=failure.stage == "mypy")
    return shrink(
        schema,
        lambda candidate: bool(failures_of(candidate, probe_limits, stages)),
        budget=budget,
    )


def explain(
    failure: Failure,
    batch: Sequence[int],
    options: Options,
    limits: Limits,
    budget: float,
) -> str:
    """``failure`` described for a person: reproduced alone and shrunk when possible."""
    schema = generate_schema(failure.seed, options)
    alone = failures_of(schema, limits, frozenset({failure.stage}))
    lines = []
    if not alone:
        lines.append(
            f"(fails only inside its batch: rerun with --seed {batch[0]} "
            f"--schemas {len(batch)} --batch {len(batch)})"
        )
    elif budget > 0:
        shrunk, probes = shrink_failure(failure, schema, limits, budget=budget)
        if shrunk.render() != schema.render():
            failure.shrunk = shrunk.render()
        lines.append(f"(shrunk with {probes} probes)")
    lines.append(failure.describe())
    return "\n".join(lines)
