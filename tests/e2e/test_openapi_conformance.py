"""The OpenAPI document tells the truth: schemathesis, every check, against a real server.

Seeded and bounded (20 examples per operation), so a run is repeatable and takes seconds. What
JSON Schema cannot express (whether random bytes are an image, whether a tensor's data fits its
shape) is declared, with reasons, in schemathesis.toml beside this file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CONFIG = Path(__file__).with_name("schemathesis.toml")


def run_schemathesis(url: str, cwd: Path, checks: str = "all", *extra: str) -> subprocess.CompletedProcess:
    """schemathesis with this project's config, seeded and bounded, against ``url``'s OpenAPI."""
    executable = Path(sys.executable).with_name("schemathesis")
    if not executable.exists() and not shutil.which("schemathesis"):
        pytest.skip("schemathesis is not installed (`make setup` installs it)")
    command = [
        str(executable),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--checks",
        checks,
        "--seed",
        "1",
        "--max-examples",
        "20",
        "--request-timeout",
        "30",
        "--no-color",
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)


def test_schemathesis_finds_no_failure_with_all_checks(server, tmp_path):
    done = run_schemathesis(server, tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "unique failure" not in done.stdout
