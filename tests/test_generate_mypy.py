"""mypy --strict accepts the modules generated from demo.x, libvirt and guestfs."""

from __future__ import annotations

from pathlib import Path

from mypy import api

from test_generate_helpers import DEMO_X, generated_text


def test_generated_modules_pass_mypy_strict(
    tmp_path: Path,
    remote_protocol_x: Path,
    libvirt_header: Path,
    guestfs_protocol_x: Path,
) -> None:
    files = []
    for source in (DEMO_X, remote_protocol_x, guestfs_protocol_x):
        path = tmp_path / f"{source.stem}.py"
        path.write_text(generated_text(source))
        files.append(str(path))
    # One invocation for all three keeps this to a single mypy start-up.
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--python-version=3.11",
            "--config-file=",
            f"--cache-dir={tmp_path / '.mypy_cache'}",
            "--no-error-summary",
            *files,
        ]
    )
    assert status == 0, stdout[:5000] + stderr[:2000]
