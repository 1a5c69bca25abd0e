"""Shared fixtures: the smoke execution of every chapter runs once per session."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livro import book  # noqa: E402


def run_smoke(out: Path) -> Path:
    """Run `scripts/execute.py --profile smoke --jobs 2` for every chapter into `out`: two lanes
    of one core each, as `make execute` runs the book on two cores; the log goes to log.txt."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "execute.py"), "--profile", "smoke", "--out", str(out), "--jobs", "2"],
        capture_output=True, text=True, env=dict(os.environ),
    )
    (out / "log.txt").write_text(proc.stdout + proc.stderr)
    return out


def load_script(name: str):
    """scripts/<name>.py as a module (scripts/ on the path, as when it runs as a script)."""
    import importlib.util

    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory):
    """Every chapter's smoke execution, once per test session."""
    return run_smoke(tmp_path_factory.mktemp("smoke"))


def smoke_results(smoke_dir: Path, chapter: str) -> dict:
    path = smoke_dir / f"{chapter}.json"
    if not path.exists():
        log = (smoke_dir / "log.txt").read_text()
        lines = [ln for ln in log.splitlines() if f"[{chapter}]" in ln]
        if not os.environ.get("LIVRO_DATA") and any("DataMissing" in ln for ln in lines):
            # No data directory and no internet: nothing to run the chapter on. (CI has
            # ../shared/data beside the clone, so there this is a failure, not a skip.)
            pytest.skip(f"no data for {chapter}: {' '.join(lines)}")
        pytest.fail(f"The smoke execution of {chapter} produced no results: {' '.join(lines) or log[-500:]}")
    return json.loads(path.read_text())
