"""Execute chapters with papermill and record their results.

    python scripts/execute.py [CHAPTER ...] [--profile full|smoke] [--out DIR] [--jobs N]

``full`` runs the course's settings and replaces ``executed/<chapter>.ipynb`` and
``results/<chapter>.json``; ``smoke`` runs a tiny subset (for CI) and writes to
``_build/smoke/`` unless ``--out`` says otherwise. Chapter names are checked against the
book before anything runs.

One execution of a chapter at a time (a lock per chapter and target; a second is told who
holds it). Writes are atomic and exclusive: the notebook and the results file are written
to unique temporary names and renamed together, the results file last, with SIGTERM/SIGINT/
SIGHUP held back; the results file carries a seal over both (``livro.integrity``), so a pair
split by a SIGKILL, or edited by hand, is detected by the build, the tests and
``up_to_date``. A failed run leaves the previous outputs untouched, keeps the partial
notebook in ``_build/failed/`` (``OUT/failed/`` with ``--out``) and names the failing cell
as counted in it; a stopped run (SIGTERM, SIGINT, SIGHUP) writes nothing; neither leaves
its ``/tmp/livro-*`` folder behind.

With ``--jobs N`` (``make execute`` passes one per core) the chapters run in N lanes at
once, each lane a child process pinned to one CPU core, longest chapter first; a lane
takes the next chapter when its own ends. On this book's 2-core machines two one-core
trainings together do more work per second than one training spread over both cores,
whose threads spend time waiting on each other at these small batch sizes: about a third
more for the case study's final CNN, a few percent for MobileNetV2 (`make bench`, the
`@1` variants, measures it for every heavy exercise). What each chapter computes does not
change; the number of cores it ran on is recorded in its provenance (``cores_used``).
A lane with no chapter left to start helps a running one with its trainings (``--fill``,
``livro.treino``'s per-training locks share them out); in a forced run it takes them from the
chapter's last training back while the chapter's lane trains from the first on, so the two
meet once (``next_from_the_end``).
Stopping the parent stops every lane: the stop is forwarded, and each lane is asked by
Linux (PR_SET_PDEATHSIG) to stop when its parent dies, even by SIGKILL.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import fcntl
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livro import book, cache  # noqa: E402

PACKAGES = ["keras", "tensorflow-cpu", "tensorflow", "jax", "numpy", "scikit-learn",
            "matplotlib", "papermill", "jupytext", "myst-nb", "jupyter-book"]


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def cpu_model() -> str:
    return f"{cache.cpu_name()} ({os.cpu_count()} cores)"


# Asked in a fresh process after the chapter ran, in the same environment as its kernel: the
# devices each framework places its computations on (a GPU first when it sees one).
DEVICE_PROBE = """
import json
found = {}
try:
    import tensorflow as tf
    found["tensorflow"] = [d.device_type + ": " + tf.config.experimental.get_device_details(d).get("device_name", d.name)
                           for d in tf.config.list_physical_devices()]
except ImportError:
    pass
try:
    import jax
    found["jax"] = [d.platform + ": " + d.device_kind for d in jax.devices()]
except ImportError:
    pass
print(json.dumps(found))
"""


def framework_devices() -> dict:
    """{framework: ["CPU: ...", "GPU: NVIDIA ..."]} as TensorFlow (tf.config.list_physical_devices)
    and JAX (jax.devices()) list them; an error text instead if the probe failed."""
    proc = subprocess.run([sys.executable, "-c", DEVICE_PROBE], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def used_gpu(devices: dict, backend: str) -> str | None:
    """The GPU the chapter's Keras backend computed on, as that framework names it; None: the CPU."""
    gpus = [d.split(": ", 1)[1] for d in devices.get(backend, []) if d.lower().startswith("gpu")]
    return gpus[0] if gpus else None


def cell_times(nb) -> list[dict]:
    times = []
    for index, cell in enumerate(nb.cells):
        duration = cell.metadata.get("papermill", {}).get("duration")
        if cell.cell_type == "code" and duration is not None:
            first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
            times.append({"cell": index, "first_line": first[:70], "seconds": round(duration, 2)})
    return times


def keras_backend(nb) -> str:
    """The Keras backend a chapter runs on: `livro: {keras_backend: jax}` in its front matter,
    chosen where `make bench` shows that backend clearly faster for the chapter's models;
    tensorflow otherwise. KERAS_BACKEND in the environment overrides both (and is recorded)."""
    return os.environ.get("KERAS_BACKEND") or nb.metadata.get("livro", {}).get("keras_backend", "tensorflow")


def same_libraries(recorded: dict, current: dict) -> bool:
    """Is every library the execution recorded at the same version now? A library installed
    since (jax, for another chapter's backend) does not count, and `tensorflow` (the GPU
    build) and `tensorflow-cpu` of the same version are the same library."""
    def named(found: dict) -> dict:
        return {("tensorflow" if name == "tensorflow-cpu" else name): v for name, v in found.items()}

    now = named(current)
    return all(now.get(name) == version for name, version in named(recorded).items())


def up_to_date(chapter: str, code_sha256: str, backend: str = "tensorflow") -> bool:
    """Is the committed full execution still valid? Code, profile, libraries and data decide,
    and the pair must be intact (livro.integrity: code cells, glued values, seal)."""
    from livro import integrity

    try:
        results = book.read_results(chapter)
    except integrity.BookError as error:
        print(f"[{chapter}] {error}: executing it again.")
        return False
    if results is None or not (book.EXECUTED / f"{chapter}.ipynb").exists():
        return False
    prov = results.get("provenance", {})
    if prov.get("profile") != "full" or prov.get("code_sha256") != code_sha256:
        return False
    if not same_libraries(prov.get("versions", {}), versions()):
        return False
    if prov.get("backend") != backend:
        return False
    if cache.stale_trainings(chapter, results, book.RESULTS):  # a stored training it used changed
        return False
    from livro import data

    # The same arrays (content checksums) from the data folder or the Keras downloads, and
    # every dataset the execution lacked still absent.
    if not data.same_data(results):
        return False
    broken = integrity.problems(chapter)  # a hand-edited or half-replaced pair is not up to date
    if broken:
        print(f"[{chapter}] {broken[0]}: executing it again.")
    return not broken


def data_problems(chapters: list[str]) -> dict[str, list[str]]:
    """Before anything starts: for each chapter, one sentence per file its code asks
    livro.data for that is missing, corrupt or not the book's. An optional dataset (not in the
    mirror: CIFAR-100) may be absent, since the chapter records that, but not broken."""
    from livro import data

    found, problems = {}, {}
    for chapter in chapters:
        if not (book.BOOK / f"{chapter}.md").exists():
            continue
        code = "\n".join(cell.source for cell in book.read_source(chapter).cells if cell.cell_type == "code")
        for name in data.needed(code):
            if name not in found:
                try:
                    data.identity(name)
                    found[name] = None
                except data.DataMissing as error:
                    optional = name in data.OPTIONAL and not isinstance(error, data.DataUnusable)
                    found[name] = None if optional else str(error)
            if found[name]:
                problems.setdefault(chapter, []).append(found[name])
    return problems


class Stopped(BaseException):
    """SIGTERM, SIGINT or SIGHUP reached an execution: it stops and writes nothing. A
    BaseException, like KeyboardInterrupt, so that no `except Exception` takes it for a failure."""


def _stop(signum, frame):
    raise Stopped(signal.Signals(signum).name)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOPPED = 130


@contextlib.contextmanager
def stop_on_signals():
    """Turn SIGTERM/SIGINT/SIGHUP into `Stopped` (so `finally` blocks clean up), then restore."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


class Locked(Exception):
    """Another execution of the chapter holds its lock (one sentence)."""


@contextlib.contextmanager
def chapter_lock(chapter: str, folder: Path):
    """One execution of a chapter at a time per target: an exclusive lock on FOLDER/<chapter>.lock
    (released by the kernel when the process ends, however it ends)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{chapter}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise Locked(f"[{chapter}] another execution of {chapter} is running ({holder}); nothing was "
                         f"executed: wait for it to end or stop it") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {dt.datetime.now().strftime('%H:%M:%S')}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()


def remove_abandoned_work(chapter: str) -> None:
    """Remove /tmp/livro-<chapter>-* folders whose run was killed (SIGKILL, power loss)."""
    for folder in Path(tempfile.gettempdir()).glob(f"livro-{chapter}-*"):
        try:
            pid = int((folder / "owner.pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            pass  # no owner file yet, or another user's process: leave it


def failing_cell(nb) -> tuple[int, str]:
    """The cell where an execution stopped, counted from 1 among all cells of the partial notebook
    (as saved in _build/failed/), and the first line of its code."""
    started = None  # a dead kernel marks no cell: the last code cell that started is the one
    for position, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        status = cell.metadata.get("papermill", {}).get("status")
        if status in ("failed", "running") or any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            started = (position, cell)
            break
        if status not in (None, "pending"):
            started = (position, cell)
    if started is None:
        return 0, ""
    position, cell = started
    return position, next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")[:60]


def write_pair(executed_path: Path, data: dict, nb_target: Path, results_target: Path) -> None:
    """Replace the notebook and its results together: both written to unique temporary names
    first, the results file (which holds the seal over both) renamed last, with SIGTERM/SIGINT/
    SIGHUP held back during the two renames. A SIGKILL between them leaves a pair whose seal
    does not match, which the build, the tests and `up_to_date` detect."""
    import nbformat

    from livro import integrity

    nb_target.parent.mkdir(parents=True, exist_ok=True)
    results_target.parent.mkdir(parents=True, exist_ok=True)
    temps = []
    try:
        for target in (nb_target, results_target):
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            temps.append(Path(name))
        nb_tmp, res_tmp = temps
        shutil.copyfile(executed_path, nb_tmp)
        data["seal"] = integrity.seal(nbformat.read(nb_tmp, as_version=4), data)
        res_tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        for tmp in temps:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            nb_tmp.replace(nb_target)
            res_tmp.replace(results_target)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def execute(chapter: str, profile: str, out: Path | None, force: bool = True) -> int:
    """Execute one chapter; 0 done or up to date, 1 failed, 2 cannot start, 3 locked, STOPPED (130)
    stopped by a signal."""
    from livro.integrity import BookError

    source_path = book.BOOK / f"{chapter}.md"
    if not source_path.exists():
        print(f"There is no chapter {chapter}: {source_path} does not exist.")
        return 2
    maintainers_smoke = out is None and profile == "smoke"  # its time goes to results/tempos_smoke.json
    if out is None and profile == "full":
        nb_target, results_target = book.EXECUTED / f"{chapter}.ipynb", book.RESULTS / f"{chapter}.json"
        build_dir = book.EXECUTED.parent / "_build"
        locks, failed = build_dir / "locks", build_dir / "failed"
    else:
        out = out or ROOT / "_build" / "smoke"
        nb_target, results_target = out / f"{chapter}.ipynb", out / f"{chapter}.json"
        locks, failed = out / ".locks", out / "failed"
    try:
        with stop_on_signals(), chapter_lock(chapter, locks):
            status = _execute_locked(chapter, profile, source_path, nb_target, results_target, failed,
                                     full=out is None and profile == "full", force=force)
            if status == 0 and maintainers_smoke:
                from livro import smoke_times

                print(f"[{chapter}] " + smoke_times.record(chapter, json.loads(results_target.read_text())), flush=True)
            return status
    except Locked as error:
        print(error)
        return 3
    except BookError as error:  # e.g. a truncated results file left by a chapter's own code
        print(error)
        return 2
    except Stopped as stop:
        print(f"[{chapter}] stopped by {stop}: nothing written, previous outputs kept.", flush=True)
        return STOPPED


def _execute_locked(chapter, profile, source_path, nb_target, results_target, failed, full, force) -> int:
    import jupytext
    import nbformat
    import papermill

    nb = jupytext.read(source_path)
    if not any("parameters" in c.metadata.get("tags", []) for c in nb.cells):
        print(f"{source_path} has no cell tagged 'parameters'; papermill could not set PROFILE.")
        return 2
    if full and not force and up_to_date(chapter, book.code_hash(nb), keras_backend(nb)):
        print(f"[{chapter}] up to date (same code, libraries and data): not executed; --force runs it anyway")
        return 0

    remove_abandoned_work(chapter)
    work = Path(tempfile.mkdtemp(prefix=f"livro-{chapter}-"))
    (work / "owner.pid").write_text(str(os.getpid()))
    env_before = dict(os.environ)
    try:
        inp, outp, results = work / "input.ipynb", work / "output.ipynb", work / "results.json"
        nbformat.write(nb, inp)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.update(kernel_environment(chapter, nb, results, results_target.parent, force))
        backend = os.environ["KERAS_BACKEND"]
        print(f"[{chapter}] executing with PROFILE={profile}, Keras backend {backend} …", flush=True)
        start = time.time()
        try:
            # nbclient puts its own SIGTERM/SIGINT handlers (shut the kernel down) during the run
            papermill.execute_notebook(
                str(inp), str(outp), parameters={"PROFILE": profile}, cwd=str(ROOT),
                kernel_name="python3", progress_bar=False, log_output=False,
                # the kernel's own log: "running over TCP without encryption" on every run (it is
                # local), tracebacks of its sockets when a stop shuts it down; cell errors are outputs
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
        except Exception as error:  # PapermillExecutionError, DeadKernelError, CellTimeoutError, ...
            return report_failure(chapter, error, outp, failed)
        finally:
            os.environ.clear()
            os.environ.update(env_before)
            if threading.current_thread() is threading.main_thread():
                for sig in STOP_SIGNALS:  # nbclient leaves the default handlers behind
                    signal.signal(sig, _stop)
        wall = time.time() - start

        executed = nbformat.read(outp, as_version=4)
        from livro.integrity import read_json

        data = read_json(results) if results.exists() else {}
        data["provenance"] = {
            "chapter": chapter,
            "profile": profile,
            "code_sha256": book.code_hash(nb),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_seconds": round(wall, 1),
            "backend": backend,
            "cpu": cpu_model(),
            "cores_used": len(usable_cores()),  # 1 in a lane of `--jobs 2`
            "gpu": used_gpu(devices := framework_devices(), backend),
            "devices": devices,
            "versions": versions(),
            "cell_seconds": cell_times(executed),
        }
        write_pair(outp, data, nb_target, results_target)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
        shutil.rmtree(work, ignore_errors=True)
    print(f"[{chapter}] done in {wall:.0f} s → {nb_target}; trainings: {cache.summary(data)}")
    return 0


def kernel_environment(chapter: str, nb, results: Path, results_dir: Path, force: bool) -> dict:
    """What a chapter's kernel is given: its results file, its Keras backend, the training
    cache's settings and this repository on the Python path."""
    return {"LIVRO_RESULTS": str(results), "KERAS_BACKEND": keras_backend(nb),
            **training_environment(chapter, results_dir, force),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def training_environment(chapter: str, results_dir: Path, force: bool) -> dict:
    """The kernel's settings for livro.treino: the chapter's cache folder, a run id that makes
    --force train everything again, and the thread count the frameworks compute with (the
    cores this execution may use; part of every training's key)."""
    cores = str(len(usable_cores()))
    env = {cache.CACHE_ENV: str(cache.folder(chapter, results_dir)),
           "TF_NUM_INTRAOP_THREADS": cores, "TF_NUM_INTEROP_THREADS": cores, "OMP_NUM_THREADS": cores}
    if force:
        env[cache.RUN_ENV] = os.environ.get(cache.RUN_ENV) or f"{time.time_ns()}-{os.getpid()}"
    return env


def fill(chapter: str, profile: str = "full", out: Path | None = None) -> int:
    """Run a chapter as a helper lane: train the trainings that no other process holds.

    The chapter executes top to bottom with ``LIVRO_TREINO_FILL=1``: ``livro.treino`` skips
    (raises in) a training another process is running and trains the next free one, so the
    chapter's own execution then finds it stored. Cells that fail because a training was
    skipped are expected: the notebook and its results are thrown away, only the stored
    trainings count. Each training seeds itself, so where it ran changes no number
    (tests/test_treino.py)."""
    import jupytext
    import nbformat
    import papermill

    nb = jupytext.read(book.BOOK / f"{chapter}.md")
    work = Path(tempfile.mkdtemp(prefix=f"livro-fill-{chapter}-"))
    nbformat.write(nb, work / "input.ipynb")
    results_dir = out or (book.RESULTS if profile == "full" else ROOT / "_build" / "smoke")
    env = {**kernel_environment(chapter, nb, work / "results.json", results_dir, False),
           cache.FILL_ENV: os.environ.get(cache.FILL_ENV) or "1"}
    before = dict(os.environ)
    os.environ.update(env)
    print(f"[{chapter}] helper lane: training what no other process holds …", flush=True)
    try:
        papermill.execute_notebook(str(work / "input.ipynb"), str(work / "output.ipynb"),
                                   parameters={"PROFILE": profile}, cwd=str(ROOT), kernel_name="python3",
                                   progress_bar=False, log_output=False, allow_errors=True,
                                   extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except papermill.PapermillExecutionError:
        pass  # cells after a skipped training fail by design
    finally:
        os.environ.clear()
        os.environ.update(before)
    data = json.loads((work / "results.json").read_text()) if (work / "results.json").exists() else {}
    shutil.rmtree(work, ignore_errors=True)
    print(f"[{chapter}] helper lane done; trainings: {cache.summary(data)}", flush=True)
    return 0


def usable_cores() -> list[int]:
    """The CPU cores this process may run on. macOS and Windows have no
    `os.sched_getaffinity`: there, every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def report_failure(chapter: str, error: Exception, outp: Path, failed: Path) -> int:
    """One sentence: chapter, cell as numbered in the partial notebook kept, error; outputs kept."""
    import nbformat

    name = getattr(error, "ename", None) or type(error).__name__
    text = getattr(error, "evalue", None)
    if text is None:
        text = next((ln for ln in str(error).splitlines() if ln.strip()), "")
    if name == "DeadKernelError":
        text = "the kernel died: out of memory, or killed"
    where, kept = "", ""
    if outp.exists():
        failed.mkdir(parents=True, exist_ok=True)
        partial = failed / f"{chapter}.ipynb"
        shutil.copyfile(outp, partial)
        kept = f", partial notebook in {partial}"
        try:
            position, first = failing_cell(nbformat.read(partial, as_version=4))
            if position:
                where = f" in cell {position} of {partial.name} (`{first}`)"
        except Exception:  # a notebook cut mid-write: the message still names the chapter
            pass
    print(f"[{chapter}] failed{where} ({name}: {text}); previous outputs kept{kept}.", flush=True)
    return 1


def longest_first(chapters: list[str]) -> list[str]:
    """The chapters by how long their last recorded execution would take with every training run
    in it (book.reader_seconds: a run that loaded its trainings from the cache took seconds),
    longest first (never executed: first of all), so that no long chapter starts last while the
    other lanes idle."""
    from livro.integrity import BookError

    def seconds(chapter):
        try:
            results = book.read_results(chapter) or {}
        except BookError:  # a corrupt results file: its chapter runs, and early
            return float("inf")
        seconds = book.reader_seconds(results) if results.get("provenance") else None
        return float("inf") if seconds is None else seconds

    return sorted(chapters, key=seconds, reverse=True)


def _lane_child(core: int) -> None:
    """In a lane's child, before it runs: pin it to its core and have Linux send it SIGTERM
    when the parent dies, even by SIGKILL (prctl PR_SET_PDEATHSIG), so no lane outlives it."""
    os.sched_setaffinity(0, {core})
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_lanes(running: dict, grace: float = 20.0) -> None:
    """Forward the stop to every lane (SIGTERM), give them `grace` seconds, then SIGKILL."""
    for proc in running.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.time() + grace
    for proc in running.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def will_execute(chapter: str, options: list[str]) -> bool:
    """Will the lane of `chapter` execute it (rather than find it up to date)?"""
    if "--force" in options or "--out" in options or "full" not in options:
        return True
    import jupytext

    nb = jupytext.read(book.BOOK / f"{chapter}.md")
    return not up_to_date(chapter, book.code_hash(nb), keras_backend(nb))


def recorded_trainings(chapter: str) -> list[str]:
    """The chapter's trainings in the order its last execution called them ([] if unknown)."""
    from livro.integrity import BookError

    try:
        return list((book.read_results(chapter) or {}).get("treinos") or {})
    except BookError:  # a damaged results file: nothing to go by
        return []


def next_from_the_end(orders: dict[str, list[str]], tried: set, out: Path | None = None) -> tuple[str, str] | None:
    """In a forced run, the training an idle lane should take: of a running chapter's trainings, in
    the order its last execution called them (`orders`: recorded_trainings), the last one that this run
    has not trained, that no process holds and that no helper was sent to yet. None when the
    chapter's own lane holds the last untrained one (it got there first)."""
    run = os.environ.get(cache.RUN_ENV)
    for chapter, order in orders.items():
        folder = cache.folder(chapter, out or book.RESULTS)
        for name in reversed(order):
            path = folder / f"{name}.json"
            try:
                done = json.loads(path.read_text())["provenance"].get("run") == run
            except (OSError, ValueError, KeyError):
                done = False
            if done or (chapter, name) in tried:
                continue
            if cache.held(path):
                break
            return chapter, name
    return None


def run_lanes(chapters: list[str], jobs: int, options: list[str]) -> int:
    """Execute the chapters in `jobs` lanes, each a child process pinned to one CPU core.
    Stopping the parent (SIGTERM, SIGINT, SIGHUP; SIGKILL through PR_SET_PDEATHSIG) stops every
    lane; a stopped lane writes nothing."""
    cores = usable_cores()[:jobs]
    queue = longest_first(chapters)
    running: dict[int, subprocess.Popen] = {}  # core -> the child executing a chapter there
    executing: dict[int, tuple[str, float]] = {}  # core -> (chapter its lane executes, start)
    helping: dict[int, str] = {}  # core -> the chapter whose trainings a helper lane runs
    helped: set[str] = set()
    tried: set[tuple[str, str]] = set()  # (chapter, training) a helper lane was sent to train
    force = "--force" in options
    out = Path(options[options.index("--out") + 1]) if "--out" in options else None
    orders = {chapter: recorded_trainings(chapter) for chapter in chapters}
    status = 0
    timings: dict[str, tuple[float, float, int]] = {}  # chapter -> (start offset, seconds, exit status)

    def start_helper(core: int, chapter: str, training: str | None = None) -> subprocess.Popen:
        """A helper lane (--fill) on `core`: the chapter's free trainings, or only `training`."""
        return subprocess.Popen([sys.executable, __file__, chapter, "--fill", *[o for o in options if o != "--force"]],
                                env={**os.environ, **({cache.FILL_ENV: training} if training else {})},
                                preexec_fn=lambda: _lane_child(core))

    print(f"executing {len(queue)} chapters in {len(cores)} lanes (cores {cores}), in this order: {', '.join(queue)}",
          flush=True)
    started = time.time()
    try:
        with stop_on_signals():
            while queue or running:
                for core in cores:
                    if core not in running and queue:
                        executing[core] = (queue.pop(0), time.time())
                        running[core] = subprocess.Popen(
                            [sys.executable, __file__, executing[core][0], *options],
                            preexec_fn=lambda core=core: _lane_child(core))
                    elif core not in running and force and (task := next_from_the_end(
                            {c: orders[c] for c, _ in executing.values()}, tried, out)):
                        # FORCE=1: every training runs. The chapter's lane trains from the first one
                        # on; this idle lane takes the last one not yet trained, then the one before,
                        # so the two meet in the middle and the chapter's lane waits at most once.
                        tried.add(task)
                        helping[core] = task[0]
                        running[core] = start_helper(core, *task)
                    elif core not in running and (pending := [
                            c for c, _ in executing.values() if c not in helped and will_execute(c, options)
                            and not (force and orders[c])]):
                        # (not forced, or a chapter never executed: which trainings it has is unknown)
                        # Nothing left to start: this idle lane trains what a chapter that is really
                        # executing (not found up to date) has not started yet; livro.treino's
                        # per-training locks share the work out.
                        helped.add(helping.setdefault(core, pending[0]))
                        running[core] = start_helper(core, pending[0])
                time.sleep(1)
                for core, proc in list(running.items()):
                    if proc.poll() is not None:
                        if core in executing:
                            status = max(status, proc.returncode)
                            chapter, start = executing.pop(core)
                            timings[chapter] = (start - started, time.time() - start, proc.returncode)
                            for other, helped_chapter in list(helping.items()):
                                if helped_chapter == chapter:  # its trainings are all done by now
                                    running[other].terminate()
                        helping.pop(core, None)
                        del running[core]
    except Stopped as stop:
        stop_lanes(running)
        print(f"stopped by {stop}: {len(running)} running chapters stopped (previous outputs kept), "
              f"{len(queue)} not started.", flush=True)
        return STOPPED
    print(f"{len(chapters)} chapters in {len(cores)} lanes: {time.time() - started:.0f} s from first start to last end")
    if "--force" in options and "--out" not in options and options[options.index("--profile") + 1] == "full":
        record_regeneration(timings, started, time.time(), cores, "--force" in options)
    return status


def record_regeneration(timings: dict, started: float, ended: float, cores: list[int], force: bool) -> dict:
    """Add what this multi-lane forced (FORCE=1) full execution took to results/regeneracao.json: its
    makespan, each chapter's lane time, and the trainings it ran or loaded (from their cache entries).
    Earlier runs stay while they hold a chapter no later run regenerated, so the book regenerated in
    parts (one 3-hour session cannot hold it all) is recorded whole. The provenance page compares
    it with the FLOP floor of `make bench`."""
    begin = dt.datetime.fromtimestamp(started, dt.timezone.utc)
    chapters = {}
    for chapter, (offset, seconds, returncode) in sorted(timings.items(), key=lambda kv: kv[1][0]):
        ran, loaded = {}, []
        for path in sorted(cache.folder(chapter, book.RESULTS).glob("*.json")):
            p = json.loads(path.read_text()).get("provenance", {})
            if dt.datetime.fromisoformat(p["date"]) >= begin:
                ran[path.stem] = p["seconds"]
            else:
                loaded.append(path.stem)
        chapters[chapter] = {"start_s": round(offset, 1), "seconds": round(seconds, 1), "exit_status": returncode,
                             "trainings_run_s": ran, "trainings_loaded": loaded}
    record = {
        "date": begin.isoformat(timespec="seconds"), "force": force, "lanes": len(cores),
        "cpu": f"{cache.cpu_name()} ({len(usable_cores())} cores)",
        "makespan_s": round(ended - started, 1),
        "lane_seconds_sum": round(sum(c["seconds"] for c in chapters.values()), 1),
        "trainings_run_seconds_sum": round(sum(s for c in chapters.values() for s in c["trainings_run_s"].values()), 1),
        "chapters": chapters,
    }
    path = book.RESULTS / "regeneracao.json"
    runs = regeneration_runs(json.loads(path.read_text())) if path.exists() else []
    runs = [r for r in runs if set(r["chapters"]) - set(chapters)] + [record]
    path.write_text(json.dumps({"runs": runs}, indent=1, ensure_ascii=False) + "\n")
    return record


def regeneration_runs(recorded: dict) -> list[dict]:
    """The forced runs in results/regeneracao.json, oldest first (a file of one run, as written
    before 2026-12-02, is that run)."""
    return recorded["runs"] if "runs" in recorded else [recorded]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="default: every chapter")
    parser.add_argument("--profile", default="full", choices=["full", "smoke"])
    parser.add_argument("--out", type=Path, help="write here instead of executed/ and results/")
    parser.add_argument("--force", action="store_true", help="execute even if the chapter is up to date")
    parser.add_argument("--fill", action="store_true",
                        help="helper lane: train the chapter's trainings no other process holds, write nothing else")
    parser.add_argument("--jobs", type=int, default=1,
                        help="run chapters in this many lanes at once, one CPU core each (default 1: "
                             "one chapter at a time on every core)")
    args = parser.parse_args(argv)
    known = book.chapters()
    unknown = [name for name in args.chapters if name not in known]
    if unknown:  # CHAPTER (and the Execute workflow's input) is data: nothing runs on a bad name
        print(f"{unknown[0]!r} is not a chapter of this book; the chapters are: {', '.join(known)}.")
        return 2
    chapters = args.chapters or known
    if args.fill:
        return max(fill(chapter, args.profile, args.out) for chapter in chapters)
    if args.force:  # one run id for every lane and helper process: what this run trained counts
        os.environ.setdefault(cache.RUN_ENV, f"{time.time_ns()}-{os.getpid()}")
    refused = data_problems(chapters)  # a chapter whose data is missing or corrupt never starts
    for chapter, sentences in refused.items():
        print("\n".join(f"[{chapter}] not executed, DataMissing: {sentence}" for sentence in sentences), flush=True)
    chapters = [chapter for chapter in chapters if chapter not in refused]
    # With two cores or more, chapters always run in one-core lanes (a lone chapter too: the
    # other lane helps with its trainings), so every training computes with one thread.
    jobs = min(args.jobs, len(usable_cores()))
    if jobs > 1 and not hasattr(os, "sched_setaffinity"):
        print("This system cannot pin a process to a core (no os.sched_setaffinity): "
              "the chapters run one at a time, on every core.")
        jobs = 1
    if jobs > 1 and chapters:
        options = ["--profile", args.profile, *(["--out", str(args.out)] if args.out else []),
                   *(["--force"] if args.force else [])]
        return max(run_lanes(chapters, jobs, options), 1 if refused else 0)
    status = 1 if refused else 0
    for chapter in chapters:
        status = max(status, execute(chapter, args.profile, args.out, force=args.force))
        if status == STOPPED:  # the rest of the list is not started
            break
    return status


if __name__ == "__main__":
    sys.exit(main())
