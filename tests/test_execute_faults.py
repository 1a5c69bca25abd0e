"""`make execute` under faults: a second run, a dead kernel, a failing cell, a stop, a kill,
a bad chapter name (issue 24). Every chapter here is a tiny one in a temporary folder; the
tests leave nothing in the working tree or in /tmp."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from livro import book
from test_livro import CHAPTER, load_execute, tiny_book  # noqa: F401  (tiny_book is a fixture)


@pytest.fixture
def nothing_left_behind(tmp_path, monkeypatch):
    """The working tree's _build/failed is as before the test, and the executions' temporary
    folder (a private TMPDIR, so that other processes' folders do not count) is left empty."""
    failed = book.ROOT / "_build" / "failed"
    before = set(failed.iterdir()) if failed.exists() else set()
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.setenv("TMPDIR", str(private))
    yield
    assert (set(failed.iterdir()) if failed.exists() else set()) == before, "a test wrote into _build/failed"
    assert not list(private.glob("livro-*")), "an execution left a livro-* temporary folder"


def test_failing_cell_is_named_as_in_the_partial_notebook(tiny_book, capsys, nothing_left_behind):
    root, write = tiny_book
    execute = load_execute()
    write(code="x = 1\nraise ValueError('quebrado')")
    assert execute.execute("t", "full", None) == 1
    message = capsys.readouterr().out.strip().splitlines()[-1]
    partial = root / "_build" / "failed" / "t.ipynb"
    import nbformat

    nb = nbformat.read(partial, as_version=4)
    number = int(message.split(" in cell ")[1].split()[0])
    assert "raise ValueError" in nb.cells[number - 1].source, (message, number)
    assert message == (f"[t] failed in cell {number} of t.ipynb (`import livro`) (ValueError: quebrado); "
                       f"previous outputs kept, partial notebook in {partial}.")
    assert not (book.EXECUTED / "t.ipynb").exists()


def test_dead_kernel_is_one_sentence_and_keeps_the_partial_notebook(tiny_book, capsys, nothing_left_behind):
    root, write = tiny_book
    execute = load_execute()
    write(code="import os\nos._exit(1)  # what the out-of-memory killer does")
    assert execute.execute("t", "full", None) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and out[0].startswith("[t] executing"), out
    assert out[1].startswith("[t] failed in cell ") and "(DeadKernelError: " in out[1], out
    assert "the kernel died" in out[1] and "partial notebook in " in out[1]
    import nbformat

    number = int(out[1].split(" in cell ")[1].split()[0])
    partial = nbformat.read(root / "_build" / "failed" / "t.ipynb", as_version=4)
    assert "os._exit(1)" in partial.cells[number - 1].source


def test_kernel_noise_is_silenced(tiny_book, capfd, nothing_left_behind):
    assert load_execute().execute("t", "smoke", tiny_book[0] / "smoke") == 0
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err


def test_a_second_execution_of_a_chapter_is_refused(tiny_book, capsys):
    root, _ = tiny_book
    execute = load_execute()
    with execute.chapter_lock("t", root / "_build" / "locks"):
        assert execute.execute("t", "full", None) == 3
    message = capsys.readouterr().out.strip()
    assert message.startswith(f"[t] another execution of t is running (pid {os.getpid()}, started ")
    assert message.endswith("nothing was executed: wait for it to end or stop it")
    assert not (root / "results" / "t.json").exists() and not (root / "RESULTS" / "t.json").exists()
    assert execute.execute("t", "full", None) == 0  # the lock is released with its holder


def test_a_half_replaced_pair_is_detected_and_re_executed(tiny_book, capsys):
    """A SIGKILL between the two renames leaves a notebook from one run and results from another."""
    root, write = tiny_book
    execute = load_execute()
    write(code="import time\nprint(time.time())")
    assert execute.execute("t", "full", None) == 0
    first = (book.EXECUTED / "t.ipynb").read_bytes()
    assert execute.execute("t", "full", None) == 0
    (book.EXECUTED / "t.ipynb").write_bytes(first)  # the older run's notebook, the newer results
    from livro import integrity

    assert "comes from another run than" in integrity.problems("t")[0]
    capsys.readouterr()
    assert not execute.up_to_date("t", book.code_hash(book.read_source("t")))
    assert "executing it again" in capsys.readouterr().out


def test_writes_use_unique_temporary_names_and_leave_none(tiny_book, nothing_left_behind):
    root, _ = tiny_book
    execute = load_execute()
    assert execute.execute("t", "full", None) == 0
    assert execute.execute("t", "full", None) == 0
    leftovers = [p.name for folder in (book.EXECUTED, book.RESULTS) for p in folder.iterdir()]
    assert sorted(leftovers) == ["t.ipynb", "t.json"]


STOPPABLE = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from livro import book
base = Path({base!r})
book.BOOK, book.EXECUTED, book.RESULTS = base / "book", base / "executed", base / "results"
import importlib.util
spec = importlib.util.spec_from_file_location("execute", {script!r})
execute = importlib.util.module_from_spec(spec)
spec.loader.exec_module(execute)
sys.exit(execute.execute("t", "full", None))
"""


def test_a_stopped_execution_writes_nothing(tmp_path, nothing_left_behind):
    """SIGTERM while a cell runs: the kernel stops, nothing is written, no folder is left."""
    for name in ("book", "executed", "results"):
        (tmp_path / name).mkdir()
    (tmp_path / "book" / "t.md").write_text(CHAPTER.replace("PROSE", "Texto.").replace(
        "CODE", f"import os, time, pathlib\npathlib.Path({str(tmp_path / 'started')!r}).write_text(str(os.getpid()))\n"
                "time.sleep(60)"))
    script = STOPPABLE.format(root=str(book.ROOT), base=str(tmp_path), script=str(book.ROOT / "scripts" / "execute.py"))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=tmp_path, env=dict(os.environ))  # TMPDIR: the private one
    started = tmp_path / "started"
    try:
        deadline = time.time() + 60
        while not started.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert started.exists(), "the chapter never started"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert not list((tmp_path / "executed").iterdir()) and not list((tmp_path / "results").iterdir())
    assert out.splitlines() == ["[t] executing with PROFILE=full, Keras backend tensorflow …",
                                "[t] stopped by SIGTERM: nothing written, previous outputs kept."], out
    kernel = int(started.read_text())
    for _ in range(50):  # the kernel is shut down with its execution
        try:
            os.kill(kernel, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(kernel, signal.SIGKILL)
        pytest.fail("the kernel kept running after its execution was stopped")


LANE_CHILD = """
import os, sys, time
from pathlib import Path
out = Path(os.environ["LANE_OUT"])
(out / (sys.argv[1] + ".pid")).write_text(str(os.getpid()))
time.sleep(6)
(out / (sys.argv[1] + ".written")).write_text("a stopped run wrote this")
"""


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_killing_make_execute_stops_every_lane(tmp_path, how):
    """Before, the lanes kept running and wrote their outputs 20-50 s after the parent died."""
    (tmp_path / "child.py").write_text(LANE_CHILD)
    parent = (f"import sys; sys.path.insert(0, {str(book.ROOT / 'scripts')!r})\n"
              "import execute\n"
              f"execute.__file__ = {str(tmp_path / 'child.py')!r}\n"
              "execute.longest_first = lambda chapters: list(chapters)\n"
              "sys.exit(execute.run_lanes(['a', 'b'], 2, []))\n")
    env = {**os.environ, "LANE_OUT": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", parent], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while not ((tmp_path / "a.pid").exists() and (tmp_path / "b.pid").exists()) and time.time() < deadline:
        time.sleep(0.1)
    children = [int((tmp_path / f"{c}.pid").read_text()) for c in "ab"]
    proc.send_signal(getattr(signal, how))
    proc.communicate(timeout=30)
    time.sleep(7)  # longer than the children would have slept
    assert not list(tmp_path.glob("*.written")), "a lane wrote its outputs after make execute was stopped"
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_chapter_names_are_data(tmp_path, capsys):
    """`make execute CHAPTER='x;touch$${IFS}/tmp/INJECTED;#'` ran the injected command."""
    marker = tmp_path / "INJECTED"
    for value in (f"x;touch$${{IFS}}{marker};#", f"$(shell touch {marker})", f"`touch {marker}`"):
        proc = subprocess.run(["make", "-s", "-o", ".venv/.installed", "execute", f"CHAPTER={value}"],
                              cwd=book.ROOT, capture_output=True, text=True, timeout=120)
        assert not marker.exists(), f"make execute CHAPTER={value!r} ran a command"
        assert proc.returncode != 0 and "is not a chapter of this book; the chapters are: " in proc.stdout, (
            proc.stdout + proc.stderr)
    assert load_execute().main(["modulo3", "x;y"]) == 2
    assert capsys.readouterr().out.startswith("'x;y' is not a chapter of this book")


def test_folders_of_killed_runs_are_removed(tiny_book, nothing_left_behind):
    """A run killed by SIGKILL cannot clean up; the next run of the chapter removes its folder
    (and leaves the folder of a run still alive)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    abandoned, alive = (Path(tempfile.mkdtemp(prefix="livro-t-")) for _ in range(2))
    (abandoned / "owner.pid").write_text(dead)
    (alive / "owner.pid").write_text(str(os.getpid()))
    assert load_execute().execute("t", "smoke", tiny_book[0] / "smoke") == 0
    assert not abandoned.exists() and alive.exists()
    (alive / "owner.pid").unlink()
    alive.rmdir()


def test_execute_workflow_treats_its_input_as_data(tmp_path):
    """The Execute workflow's `chapters` input: split into words by bash (never evaluated),
    checked against the book by scripts/plan.py in the plan job, and passed to make through the
    environment, never on its command line."""
    import yaml

    workflow = yaml.safe_load((book.ROOT / ".github" / "workflows" / "execute.yml").read_text())
    step = next(s["run"] for s in workflow["jobs"]["plan"]["steps"] if "REQUESTED" in s.get("env", {}))
    script = "\n".join(line for line in step.splitlines() if "pip install" not in line)
    marker = tmp_path / "INJECTED"

    def run(requested):
        output = tmp_path / "output"
        output.write_text("")
        env = {**os.environ, "REQUESTED": requested, "EVENT": "workflow_dispatch", "GITHUB_OUTPUT": str(output),
               "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=book.ROOT, text=True,
                              capture_output=True, env=env)
        return done, output.read_text()

    bad, _ = run(f"modulo3 x;touch${{IFS}}{marker};#")
    assert bad.returncode != 0 and "no chapter named x;touch${IFS}" in bad.stderr
    assert not marker.exists()
    good, output = run("modulo3 trabalho2")
    assert good.returncode == 0 and output.strip() == 'chapters=["modulo3", "trabalho2"]'
    execute_job = workflow["jobs"]["execute"]
    assert execute_job["env"]["CHAPTER"] == "${{ matrix.chapter }}"
    assert all("CHAPTER=" not in s.get("run", "") for s in execute_job["steps"])