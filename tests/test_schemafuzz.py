"""Schema fuzzing in CI: random .x files through rpcgen's C and xdrgen (tests/schemafuzz).

A fixed list of seeds, so CI is reproducible; ``tests/schemafuzz/run.py`` runs
thousands (docs/testing.md).  A failure prints each failing schema's seed, stage,
type, bytes and ``.x``, shrunk for up to SHRINK_SECONDS.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reference.harness import require_reference
from schemafuzz.coverage import CHECKLIST, Coverage
from schemafuzz.generate import Options, generate_schema
from schemafuzz.runner import Failure, Limits, explain, run_batch, schemas_for
from schemafuzz.schema import Decl, Ref, Schema, Struct, Typedef
from schemafuzz.shrink import shrink

#: The CI run: schemas x values of each kind (valid encodings, built values,
#: damaged encodings) per schema, in one batch (one rpcgen + gcc build).
SEEDS = range(1, 151)
VALUES = 40
#: Other seeds whose generated module goes through mypy --strict (one batch).
MYPY_SEEDS = range(100_001, 100_031)
#: Shrinking budget per failure, and how many failures get shrunk.
SHRINK_SECONDS = 60.0
SHRINK_AT_MOST = 3


def _report(failures: list[Failure], seeds: range, limits: Limits) -> str:
    parts = []
    for index, failure in enumerate(failures):
        budget = SHRINK_SECONDS if index < SHRINK_AT_MOST else 0.0
        parts.append(explain(failure, list(seeds), Options(), limits, budget))
    return f"{len(failures)} failures\n\n" + "\n\n".join(parts)


def test_random_schemas_agree_with_rpcgen() -> None:
    require_reference()
    limits = Limits(values=VALUES)
    totals = run_batch(SEEDS, Options(), limits)
    assert totals.schemas == len(SEEDS) and totals.types > 5 * len(SEEDS)
    if totals.failures:
        pytest.fail(_report(totals.failures, SEEDS, limits), pytrace=False)
    # Every schema got its values of each kind (none skipped silently); hypothesis
    # draws fewer only for a schema with fewer distinct encodings (a lone enum).
    assert totals.counts["value"] == VALUES * len(SEEDS), totals.summary()
    for kind in ("valid", "damaged"):
        assert totals.counts[kind] >= 0.95 * VALUES * len(SEEDS), totals.summary()
    assert totals.counts["hostile"] == totals.types


def test_generated_modules_pass_mypy_strict() -> None:
    require_reference()
    limits = Limits(values=0, mypy=True)
    totals = run_batch(MYPY_SEEDS, Options(), limits)
    if totals.failures:
        pytest.fail(_report(totals.failures, MYPY_SEEDS, limits), pytrace=False)
    assert totals.counts["mypy modules"] == 1


def test_generator_draws_every_construct_of_the_checklist() -> None:
    """Within 600 seeds (generation only; the CI run above takes the first 150, long
    runs take thousands): a generator change cannot quietly drop a construct."""
    coverage = Coverage()
    for start in range(1, 601, 150):
        for schema in schemas_for(range(start, start + 150), Options()):
            coverage.add(schema)
    assert coverage.missing() == []
    assert len(CHECKLIST) > 200


def test_a_seed_gives_the_same_schema() -> None:
    assert generate_schema(7).render() == generate_schema(7).render()
    assert generate_schema(7).render() != generate_schema(8).render()


def test_bare_names_are_unique_across_a_batch() -> None:
    seen: dict[str, int] = {}
    for schema in schemas_for(range(1, 400), Options()):
        for name in schema.type_names():
            assert name not in seen, (name, seen.get(name), schema.seed)
            seen[name] = schema.seed
    # A name another schema of the batch took falls back to the prefixed form;
    # alone, the schema has the same shapes.
    together = schemas_for(range(1, 400), Options())
    for schema in together[-20:]:
        alone = generate_schema(schema.seed)
        assert [type(d) for d in alone.definitions] == [
            type(d) for d in schema.definitions
        ]


def test_zero_length_option() -> None:
    texts = "".join(generate_schema(seed).render() for seed in range(60))
    assert "<0>" in texts and "[0]" in texts
    plain = "".join(
        generate_schema(seed, Options(zero_length=False)).render() for seed in range(60)
    )
    assert "<0>" not in plain and "[0]" not in plain


def test_shrinker_keeps_what_the_failure_needs() -> None:
    schema = generate_schema(3)
    # A made-up failure: "fails" while some struct has a string field.
    def has_string(candidate: Schema) -> bool:
        return any(
            isinstance(d, Struct) and any(f.kind == "string" for f in d.fields)
            for d in candidate.definitions
        )

    assert has_string(schema)
    shrunk, probes = shrink(schema, has_string, budget=30)
    assert has_string(shrunk) and probes > 0
    assert len(shrunk.definitions) == 1
    (only,) = shrunk.definitions
    assert isinstance(only, Struct) and [f.kind for f in only.fields] == ["string"]


def test_shrinker_never_leaves_dangling_names() -> None:
    schema = Schema(
        1,
        "f1",
        [
            Typedef("f1_t1", Decl("plain", "f1_t1", Ref("int"))),
            Struct("f1_s2", (Decl("plain", "a", Ref("f1_t1", "f1_t1")),)),
        ],
    )
    shrunk, _ = shrink(schema, lambda s: any(isinstance(d, Struct) for d in s.definitions))
    assert not shrunk.dangling()
    assert [type(d) for d in shrunk.definitions] == [Struct]


def test_failure_report_names_seed_stage_bytes_and_source() -> None:
    failure = Failure(42, "value", "AssertionError: boom", "struct s { int a; };\n", "s", b"\x00\x01")
    text = failure.describe()
    for part in ("seed 42", "value", "type: s", "bytes: 0001", "boom", "struct s { int a; };"):
        assert part in text


def test_run_script_shows_a_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from schemafuzz import run

    assert run.main(["--show", "--seed", "5"]) == 0
    assert capsys.readouterr().out.strip() == generate_schema(5).render().strip()
    assert Path(run.__file__).name == "run.py"
