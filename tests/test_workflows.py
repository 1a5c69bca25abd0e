"""GitHub Actions workflows: schema-valid, no security findings, least privilege, pinned, grouped,
time-limited, cached.

The workflows are checked with the GitHub workflow JSON schema (check-jsonschema) and
zizmor here; tests/test_workflow_steps.py runs actionlint and the steps themselves.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from livro import book

WORKFLOWS = sorted((book.ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def test_there_are_three_workflows():
    assert {w.stem for w in WORKFLOWS} >= {"ci", "execute", "publish"}


def test_schema():
    proc = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_has_no_findings():
    proc = subprocess.run([str(BIN / "zizmor"), "--offline", "--no-progress", str(WORKFLOWS[0].parent)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_pinned_and_grouped(path):
    workflow = yaml.safe_load(path.read_text())
    assert workflow.get("permissions") == {}, f"{path.name}: set `permissions: {{}}` at the top"
    assert "concurrency" in workflow, f"{path.name}: no concurrency group"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name} job {name}: no `permissions:`"
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses:
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), (
                    f"{path.name} job {name}: {uses} is not pinned to a commit"
                )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_a_timeout_and_pip_cache_keyed_on_a_lock_file(path):
    workflow = yaml.safe_load(path.read_text())
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{path.name} job {name}: no `timeout-minutes:`"
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/setup-python@"):
                with_ = step.get("with", {})
                assert with_.get("cache") == "pip", f"{path.name} job {name}: setup-python without `cache: pip`"
                lock = with_.get("cache-dependency-path", "")
                assert (book.ROOT / lock).is_file() and lock.startswith("requirements"), (
                    f"{path.name} job {name}: the pip cache is not keyed on a requirements file ({lock!r})")


def test_keras_caches_cover_datasets_and_models():
    caches = 0
    for path in WORKFLOWS:
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("actions/cache@") and ".keras" in step["with"]["path"]:
                    cached, caches = step["with"]["path"].split(), caches + 1
                    assert any(p.rstrip("/") in ("~/.keras", "~/.keras/models") for p in cached), (
                        f"{path.name} job {name}: the Keras cache misses ~/.keras/models (MobileNetV2 weights)")
    assert caches >= 2, "CI and the GPU job each keep the Keras downloads in a cache"


def test_ci_runs_the_readme_test_command():
    ci = (book.ROOT / ".ci" / "run").read_text()
    readme_first = (book.ROOT / "README.md").read_text().splitlines()[:5]
    assert any("make test" in line for line in readme_first) and "make test" in ci
