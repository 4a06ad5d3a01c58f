"""Every .x Debian 12 installs for ONC RPC: check, generate, import, mypy --strict.

The files are read where Debian installs them (tests/corpus.py lists them with
the options each needs); the differential tests against rpcgen's C for the same
files are in test_differential_rpcgen.py.  Test ids are the file names.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import corpus
from corpus import CORPUS, CorpusFile, require_corpus_file
from xdrgen.cli import main
from xdrgen.frontend import FrontendOptions, load
from xdrgen.frontend.pipeline import module_name_for
from xdrgen.generator.names import py_name

IDS = [entry.name for entry in CORPUS]


def test_the_corpus_list_is_what_debian_installs() -> None:
    """A file Debian adds (or drops) shows up here, not as silent lack of coverage."""
    installed = corpus.installed_x_files()
    if not installed:
        require_corpus_file(CORPUS[0])  # skips, or fails under XDRGEN_REQUIRE_PEERS=1
    assert sorted(map(str, installed)) == sorted(str(entry.path) for entry in CORPUS)


@pytest.mark.parametrize("entry", CORPUS, ids=IDS)
def test_check(entry: CorpusFile, capsys: pytest.CaptureFixture[str]) -> None:
    path = require_corpus_file(entry)
    status = main(["check", str(path), *entry.options])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.startswith(f"{path}: ")
    assert " error: " not in err


# One package of generated modules for the whole session: the import and mypy
# tests share it (mypy runs once over every module).


class Generated:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.package = root / "corpus_modules"
        self.package.mkdir()
        (self.package / "__init__.py").write_text("")
        self.modules: dict[str, Path] = {}
        self._mypy: dict[str, list[str]] | None = None

    def generate(self, entry: CorpusFile) -> Path:
        if entry.name not in self.modules:
            for other in entry.imports:
                self.generate(corpus.BY_NAME[other.name])
            path = require_corpus_file(entry)
            status = main(["generate", str(path), "-o", str(self.package), *entry.options])
            assert status == 0, f"xdrgen generate {path} failed"
            self.modules[entry.name] = self.package / f"{module_name_for(path)}.py"
        return self.modules[entry.name]

    def mypy_errors(self) -> dict[str, list[str]]:
        """mypy --strict over every generated module: error lines by module file name."""
        if self._mypy is None:
            paths = [self.generate(entry) for entry in CORPUS if _installed(entry)]
            self._mypy = mypy_strict_errors(paths, self.root / ".mypy_cache")
        return self._mypy


def mypy_strict_errors(paths: list[Path], cache_dir: Path) -> dict[str, list[str]]:
    """One ``mypy --strict`` run (in a child process: its object graph would make the
    test process's garbage collections slow) over ``paths``: error lines by file name."""
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
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 2: mypy failed
    errors: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        match = re.match(r"(?:.*/)?([^/:]+\.py):\d+:", line)
        errors.setdefault(match.group(1) if match else "?", []).append(line)
    return errors


def _installed(entry: CorpusFile) -> bool:
    return all(p.is_file() for p in (entry.path, *entry.imports, *entry.constants_from))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    return Generated(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("entry", CORPUS, ids=IDS)
def test_generate_and_import(entry: CorpusFile, generated: Generated) -> None:
    """The module imports, and has a codec for every type and every procedure table."""
    path = generated.generate(entry)
    sys.path.insert(0, str(generated.root))
    try:
        module = importlib.import_module(f"corpus_modules.{path.stem}")
    finally:
        sys.path.remove(str(generated.root))
    model = load(
        entry.path,
        FrontendOptions(imports=entry.imports, constants_from=entry.constants_from),
    )
    assert list(module.XDR_TYPES) == list(model.types)
    for table in model.procedure_tables:
        runtime = module.PROCEDURE_TABLES.get(table.name) or module.PROCEDURE_TABLES[
            f"{table.name}_{table.version}"
        ]
        assert (runtime.program, runtime.version) == (table.program, table.version)
        assert sorted(runtime.procedures) == sorted(p.number for p in table.procedures)
    for name, constant in model.constants.items():
        assert getattr(module, py_name(name)) == constant.value


@pytest.mark.parametrize("entry", CORPUS, ids=IDS)
def test_generated_module_passes_mypy_strict(entry: CorpusFile, generated: Generated) -> None:
    require_corpus_file(entry)
    name = generated.generate(entry).name
    assert generated.mypy_errors().get(name, []) == []
