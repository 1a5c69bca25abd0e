"""A student runs a chapter on their own computer or in Colab (issue #21).

The package installs and works from any folder, the downloadable notebooks are prepared
to run alone, the reader requirements have wheels for every laptop the README promises,
`make execute` runs where `os.sched_getaffinity` is missing, and the whole journey works:
wheel → fresh virtual environment → a student and a full notebook, alone in an empty
folder → papermill, short profile → no error, nothing written into the repository.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
from pathlib import Path

import nbformat
import pytest
import yaml

from livro import book

sys.path.insert(0, str(book.ROOT / "scripts"))
import execute  # noqa: E402  (scripts/execute.py)
import notebooks  # noqa: E402  (scripts/notebooks.py)

ROOT = book.ROOT
DATA = os.environ.get("LIVRO_DATA") or (str(ROOT.parent / "shared" / "data")
                                        if (ROOT.parent / "shared" / "data").is_dir() else None)


# --- the package ---------------------------------------------------------------------------


def test_execute_runs_without_sched_getaffinity(monkeypatch):
    """macOS and Windows have neither os.sched_getaffinity nor os.sched_setaffinity."""
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    ran = []
    monkeypatch.setattr(execute, "execute", lambda chapter, *a, **k: ran.append(chapter) or 0)
    monkeypatch.setattr(execute, "data_problems", lambda chapters: {})  # about cores, not data
    monkeypatch.setattr(execute, "run_lanes", lambda *a: pytest.fail("lanes need sched_setaffinity"))
    assert execute.main(["modulo2", "modulo3", "--jobs", "2", "--profile", "smoke"]) == 0
    assert ran == ["modulo2", "modulo3"]
    assert execute.usable_cores() == list(range(os.cpu_count()))


def test_record_without_myst_nb_only_shows(monkeypatch, tmp_path):
    import IPython.display

    import livro

    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import myst_nb raises ImportError
    monkeypatch.delenv("LIVRO_RESULTS", raising=False)
    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    assert livro.record("k", 0.5) == 0.5 and shown == []
    assert livro.record("k", "b", display=True) == "b" and [str(v) for v in shown] == ["b"]


def test_spec_of_an_unknown_chapter_is_one_sentence():
    import livro

    with pytest.raises(FileNotFoundError, match=r"^Não há gabarito do capítulo 'nenhum': .*nenhum\.yml não existe\.$"):
        livro.spec("nenhum")


# --- the downloadable notebooks ------------------------------------------------------------


def test_downloadable_notebook_installs_this_edition_and_states_times():
    conf = yaml.safe_load((ROOT / "_config.yml").read_text())
    nb = notebooks.notebook("modulo3", "full", ref="v2099.1")
    first = nb.cells[0]
    assert first.cell_type == "code" and "remove-cell" in first.metadata.tags
    assert f"git+{conf['repository']['url']}@v2099.1" in first.source
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    text = nb.cells[params - 1].source
    # the time a reader's own run takes: every training counted, even those this execution loaded
    full = book.reader_seconds(book.read_results("modulo3"))
    assert notebooks.duration(full) in text and '"smoke"' in text and "não são comparáveis" in text
    assert 'KERAS_BACKEND"] = "jax"' in notebooks.notebook("trabalho2", "full", ref="x").cells[0].source


def test_student_notebook_keeps_questions_outputs_and_drops_solutions():
    full = notebooks.notebook("modulo3", "full", ref="x")
    student = notebooks.notebook("modulo3", "student", ref="x")
    text = json.dumps(nbformat.writes(student))
    assert "{solution}" not in text and "{solution}" in json.dumps(nbformat.writes(full))
    assert not notebooks.ANSWER_STATEMENT.search(nbformat.writes(student))
    code = lambda nb: [c for c in nb.cells if c.cell_type == "code"]  # noqa: E731
    assert [c.source for c in code(student)] == [c.source for c in code(full)]  # no hide-input cells here
    # the questions' figures and printed numbers stay
    images = lambda nb: sum("image/png" in o.get("data", {}) for c in code(nb) for o in c.outputs)  # noqa: E731
    assert images(student) == images(full) > 0


def test_student_notebook_replaces_solution_code_by_a_placeholder():
    student = notebooks.notebook("trabalho2", "student", ref="x")
    hidden = [c for c in student.cells if c.cell_type == "code" and c.source == notebooks.PLACEHOLDER]
    solved = [c for c in book.read_source("trabalho2").cells if "hide-input" in c.metadata.get("tags", [])]
    assert len(hidden) == len(solved) > 0
    assert all(o["output_type"] == "display_data" and o["metadata"].get("scrapbook")
               for c in hidden for o in c.outputs), "a solution cell kept a visible output"


# --- any laptop ----------------------------------------------------------------------------


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def test_reader_requirements_have_wheels_for_every_laptop():
    if not _pypi_reachable():
        pytest.skip("pypi.org is not reachable from here")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "reader_platforms.py")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("Linux x86-64", "Linux aarch64", "macOS arm64", "Windows x86-64"):
        assert f"ok   {name}" in proc.stdout


def test_reader_requirements_pin_the_executions_versions():
    """The reader gets what the committed executions ran with (the lock's versions)."""
    def pins(path):
        return {ln.split("==")[0].lower().replace("_", "-"): ln.split("==")[1].strip()
                for ln in path.read_text().splitlines() if "==" in ln and not ln.startswith("#")}

    lock, reader = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-reader.txt")
    assert reader.pop("tensorflow") == lock["tensorflow-cpu"]
    reader.pop("jupyterlab")  # not in the lock: only the local reader opens Jupyter
    assert {k: lock.get(k) for k in reader} == reader


# --- the journey -------------------------------------------------------------------------------


def reader_environment() -> Path:
    """A virtual environment with the reader requirements (and papermill), made once and reused
    across test runs: $TMPDIR/livro-reader-env/<hash of the requirements and Python>."""
    key = hashlib.sha256((ROOT / "requirements-reader.txt").read_bytes()
                         + sys.version.encode() + b"papermill==2.7.0").hexdigest()[:12]
    env = Path(tempfile.gettempdir()) / "livro-reader-env" / key
    if not (env / "complete").exists():
        shutil.rmtree(env, ignore_errors=True)
        venv.create(env, with_pip=True)
        subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(ROOT / "requirements-reader.txt"), "papermill==2.7.0"], check=True)
        (env / "complete").write_text("")
    return env


def site_packages(env: Path) -> str:
    return subprocess.run([str(env / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def build_wheel(folder: Path) -> Path:
    """The package's wheel, built from a copy of its files (a build writes beside its sources)."""
    src = folder / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("livro", "answers"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(folder / "dist"), str(src)], check=True, capture_output=True)
    return next((folder / "dist").glob("*.whl"))


def repository_state() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
                          cwd=ROOT, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(DATA is None, reason="the journey reads its data from LIVRO_DATA (../shared/data in CI)")
@pytest.mark.skipif(sys.platform == "win32", reason="the journey's virtual environment layout is POSIX")
def test_student_runs_chapters_alone(tmp_path):
    """Wheel, fresh venv, one student and one full notebook alone in an empty folder, short profile."""
    if not _pypi_reachable() and not any(Path(tempfile.gettempdir(), "livro-reader-env").glob("*/complete")):
        pytest.skip("no reader environment cached and pypi.org is not reachable")
    cached = reader_environment()
    wheel = build_wheel(tmp_path / "wheel")
    fresh = tmp_path / "venv"  # the student's own environment: the wheel goes in here only
    venv.create(fresh, with_pip=True)
    Path(site_packages(fresh), "reader.pth").write_text(site_packages(cached) + "\n")
    folder = tmp_path / "aluno"  # nothing but the downloaded notebooks
    folder.mkdir()
    cases = [("modulo2", "student"), ("estudo_de_caso", "full")]
    for chapter, edition in cases:
        nb = notebooks.notebook(chapter, edition, ref="HEAD")
        # the install cell installs from the repository at this edition; here: the wheel just built
        install = nb.cells[0]
        target = f"git+{notebooks.repository()[0]}@HEAD"
        assert target in install.source
        install.source = install.source.replace(target, wheel.as_uri())
        nbformat.write(nb, folder / f"{chapter}-{edition}.ipynb")
    before = repository_state()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "LIVRO_RESULTS", "KERAS_BACKEND", "VIRTUAL_ENV"}}
    env.update(LIVRO_DATA=DATA, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="2", JUPYTER_PLATFORM_DIRS="1",
               JUPYTER_DATA_DIR=str(tmp_path / "jupyter"), HOME=str(tmp_path / "home"),
               PATH=f"{fresh / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    times = {}
    for chapter, edition in cases:
        name = f"{chapter}-{edition}"
        start = time.time()
        proc = subprocess.run([str(fresh / "bin" / "python"), "-m", "papermill", f"{name}.ipynb", f"{name}-out.ipynb",
                               "-p", "PROFILE", "smoke", "-k", "python3", "--cwd", str(folder)],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=900)
        times[name] = time.time() - start
        assert proc.returncode == 0, f"{name} failed when run alone:\n" + (proc.stdout + proc.stderr)[-3000:]
    print("journey times (s):", {k: round(v) for k, v in times.items()})
    run = nbformat.read(folder / "modulo2-student-out.ipynb", as_version=4)
    installed = json.dumps(run.cells[0].outputs) + subprocess.run(
        [str(fresh / "bin" / "python"), "-m", "pip", "list"], capture_output=True, text=True).stdout
    assert "livro-redes-neurais" in installed or "livro_redes_neurais" in installed, "the install cell installed nothing"
    outputs = json.dumps([c.get("outputs", []) for c in run.cells], ensure_ascii=False)
    assert "cifar100.npz" in outputs, "modulo2 should say, in one sentence, that CIFAR-100 is missing"
    assert "Traceback" not in outputs
    assert repository_state() == before, "running the notebooks outside the repository wrote into it"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{c}-{e}.ipynb" for c, e in cases] + [f"{c}-{e}-out.ipynb" for c, e in cases])


def test_notebooks_command_writes_each_edition(tmp_path):
    assert notebooks.main(["modulo2", "--edition", "student", "--ref", "v1", "--out", str(tmp_path)]) == 0
    nb = nbformat.read(tmp_path / "student" / "modulo2.ipynb", as_version=4)
    assert nb.metadata["livro"] == {"chapter": "modulo2", "edition": "student", "ref": "v1"}


def test_edition_ref_is_the_version_being_built(monkeypatch):
    """Each version's notebooks install the package at that version (scripts/site.py sets LIVRO_REF)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("site_script", ROOT / "scripts" / "site.py")
    site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(site)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert site.edition_ref("HEAD") == head
    monkeypatch.setenv("LIVRO_REF", "v2099.1")
    assert notebooks.current_ref() == "v2099.1"
    monkeypatch.delenv("LIVRO_REF")
    assert notebooks.current_ref() == head
