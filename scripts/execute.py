"""Execute chapters with papermill and record their results.

    python scripts/execute.py [CHAPTER ...] [--profile full|smoke] [--out DIR] [--jobs N]

``full`` runs the course's settings and replaces ``executed/<chapter>.ipynb`` and
``results/<chapter>.json``; ``smoke`` runs a tiny subset (for CI) and writes to
``_build/smoke/`` unless ``--out`` says otherwise. Writes are atomic: a failed
run leaves the previous outputs untouched, keeps the partial notebook in
``_build/failed/`` and names the failing cell.

With ``--jobs N`` (``make execute`` passes one per core) the chapters run in N lanes at
once, each lane a child process pinned to one CPU core, longest chapter first; a lane
takes the next chapter when its own ends. On this book's 2-core machines two one-core
trainings together do more work per second than one training spread over both cores,
whose threads spend time waiting on each other at these small batch sizes: about a third
more for the case study's final CNN, a few percent for MobileNetV2 (`make bench`, the
`@1` variants, measures it for every heavy exercise). What each chapter computes does not
change; the number of cores it ran on is recorded in its provenance (``cores_used``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
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
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_model() -> str | None:
    nvidia = shutil.which("nvidia-smi")
    if not nvidia:
        return None
    out = subprocess.run([nvidia, "--query-gpu=name", "--format=csv,noheader"],
                         capture_output=True, text=True)
    return out.stdout.strip() or None


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


def up_to_date(chapter: str, code_sha256: str, backend: str = "tensorflow") -> bool:
    """Is the committed full execution still valid? Code, profile, libraries and data decide."""
    results = book.read_results(chapter)
    if results is None or not (book.EXECUTED / f"{chapter}.ipynb").exists():
        return False
    prov = results.get("provenance", {})
    if prov.get("profile") != "full" or prov.get("code_sha256") != code_sha256:
        return False
    # Every library the execution recorded must be at the same version now; a library
    # installed since (jax, for another chapter's backend) does not touch this chapter.
    current = versions()
    if any(current.get(name) != version for name, version in prov.get("versions", {}).items()):
        return False
    if prov.get("backend") != backend:
        return False
    if cache.stale_trainings(chapter, results, book.RESULTS):  # a stored training it used changed
        return False
    from livro import data

    folder = data.data_dir()
    for name, used in results.get("data", {}).items():
        path = folder / name if folder else None
        if path is None or not path.is_file() or used.get("sha256") != data.sha256(path):
            return False
    return True


def execute(chapter: str, profile: str, out: Path | None, force: bool = True) -> int:
    import jupytext
    import nbformat
    import papermill

    source_path = book.BOOK / f"{chapter}.md"
    if not source_path.exists():
        print(f"There is no chapter {chapter}: {source_path} does not exist.")
        return 2
    nb = jupytext.read(source_path)
    if not any("parameters" in c.metadata.get("tags", []) for c in nb.cells):
        print(f"{source_path} has no cell tagged 'parameters'; papermill could not set PROFILE.")
        return 2
    if out is None and profile == "full":
        if not force and up_to_date(chapter, book.code_hash(nb), keras_backend(nb)):
            print(f"[{chapter}] up to date (same code, libraries and data): not executed; --force runs it anyway")
            return 0
        nb_target, results_target = book.EXECUTED / f"{chapter}.ipynb", book.RESULTS / f"{chapter}.json"
    else:
        out = out or ROOT / "_build" / "smoke"
        nb_target, results_target = out / f"{chapter}.ipynb", out / f"{chapter}.json"

    work = Path(tempfile.mkdtemp(prefix=f"livro-{chapter}-"))
    inp, outp, results = work / "input.ipynb", work / "output.ipynb", work / "results.json"
    nbformat.write(nb, inp)
    env_before = dict(os.environ)
    os.environ["LIVRO_RESULTS"] = str(results)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    backend = os.environ["KERAS_BACKEND"] = keras_backend(nb)
    os.environ.update(training_environment(chapter, results_target.parent, force))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    print(f"[{chapter}] executing with PROFILE={profile}, Keras backend {backend} …", flush=True)
    start = time.time()
    try:
        papermill.execute_notebook(
            str(inp), str(outp), parameters={"PROFILE": profile}, cwd=str(ROOT),
            kernel_name="python3", progress_bar=False, log_output=False,
        )
    except papermill.PapermillExecutionError as error:
        failed = ROOT / "_build" / "failed"
        failed.mkdir(parents=True, exist_ok=True)
        if outp.exists():
            shutil.copy(outp, failed / f"{chapter}.ipynb")
        print(
            f"[{chapter}] failed in cell {error.cell_index} ({error.ename}: {error.evalue}); "
            f"previous outputs kept, partial notebook in _build/failed/{chapter}.ipynb."
        )
        return 1
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    wall = time.time() - start

    executed = nbformat.read(outp, as_version=4)
    data = json.loads(results.read_text()) if results.exists() else {}
    data["provenance"] = {
        "chapter": chapter,
        "profile": profile,
        "code_sha256": book.code_hash(nb),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 1),
        "backend": backend,
        "cpu": cpu_model(),
        "cores_used": len(os.sched_getaffinity(0)),  # 1 in a lane of `--jobs 2`
        "gpu": gpu_model(),
        "versions": versions(),
        "cell_seconds": cell_times(executed),
    }
    nb_target.parent.mkdir(parents=True, exist_ok=True)
    results_target.parent.mkdir(parents=True, exist_ok=True)
    tmp_nb = nb_target.with_suffix(".ipynb.tmp")
    tmp_res = results_target.with_suffix(".json.tmp")
    nbformat.write(executed, tmp_nb)
    tmp_res.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp_nb.replace(nb_target)
    tmp_res.replace(results_target)
    shutil.rmtree(work, ignore_errors=True)
    print(f"[{chapter}] done in {wall:.0f} s → {nb_target}; trainings: {cache.summary(data)}")
    return 0


def training_environment(chapter: str, results_dir: Path, force: bool) -> dict:
    """The kernel's settings for livro.treino: the chapter's cache folder, a run id that makes
    --force train everything again, and the thread count the frameworks compute with (the
    cores this execution may use; part of every training's key)."""
    cores = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    env = {cache.CACHE_ENV: str(cache.folder(chapter, results_dir)),
           "TF_NUM_INTRAOP_THREADS": cores, "TF_NUM_INTEROP_THREADS": cores, "OMP_NUM_THREADS": cores}
    if force:
        env[cache.RUN_ENV] = os.environ.get(cache.RUN_ENV) or f"{time.time_ns()}-{os.getpid()}"
    return env


def fill(chapter: str, profile: str = "full") -> int:
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
    results_dir = book.RESULTS if profile == "full" else ROOT / "_build" / "smoke"
    env = {**training_environment(chapter, results_dir, False), cache.FILL_ENV: "1",
           "LIVRO_RESULTS": str(work / "results.json"), "KERAS_BACKEND": keras_backend(nb),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    before = dict(os.environ)
    os.environ.update(env)
    print(f"[{chapter}] helper lane: training what no other process holds …", flush=True)
    try:
        papermill.execute_notebook(str(work / "input.ipynb"), str(work / "output.ipynb"),
                                   parameters={"PROFILE": profile}, cwd=str(ROOT), kernel_name="python3",
                                   progress_bar=False, log_output=False, allow_errors=True)
    except papermill.PapermillExecutionError:
        pass  # cells after a skipped training fail by design
    finally:
        os.environ.clear()
        os.environ.update(before)
    data = json.loads((work / "results.json").read_text()) if (work / "results.json").exists() else {}
    shutil.rmtree(work, ignore_errors=True)
    print(f"[{chapter}] helper lane done; trainings: {cache.summary(data)}", flush=True)
    return 0


def longest_first(chapters: list[str]) -> list[str]:
    """The chapters by the wall time of their last recorded execution, longest first (never
    executed: first of all), so that no long chapter starts last while the other lanes idle."""
    def seconds(chapter):
        results = book.read_results(chapter) or {}
        return results.get("provenance", {}).get("wall_seconds", float("inf"))

    return sorted(chapters, key=seconds, reverse=True)


def run_lanes(chapters: list[str], jobs: int, options: list[str]) -> int:
    """Execute the chapters in `jobs` lanes, each a child process pinned to one CPU core."""
    cores = sorted(os.sched_getaffinity(0))[:jobs]
    queue = longest_first(chapters)
    running: dict[int, subprocess.Popen] = {}  # core -> the child executing a chapter there
    status = 0
    print(f"executing {len(queue)} chapters in {len(cores)} lanes (cores {cores}), in this order: {', '.join(queue)}",
          flush=True)
    started = time.time()
    while queue or running:
        for core in cores:
            if core not in running and queue:
                running[core] = subprocess.Popen(
                    [sys.executable, __file__, queue.pop(0), *options],
                    preexec_fn=lambda core=core: os.sched_setaffinity(0, {core}))
        time.sleep(1)
        for core, proc in list(running.items()):
            if proc.poll() is not None:
                status = max(status, proc.returncode)
                del running[core]
    print(f"{len(chapters)} chapters in {len(cores)} lanes: {time.time() - started:.0f} s from first start to last end")
    return status


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
    chapters = args.chapters or book.chapters()
    if args.fill:
        return max(fill(chapter, args.profile) for chapter in chapters)
    if args.force:  # one run id for every lane and helper process: what this run trained counts
        os.environ.setdefault(cache.RUN_ENV, f"{time.time_ns()}-{os.getpid()}")
    jobs = min(args.jobs, len(os.sched_getaffinity(0)), len(chapters))
    if jobs > 1:
        options = ["--profile", args.profile, *(["--out", str(args.out)] if args.out else []),
                   *(["--force"] if args.force else [])]
        return run_lanes(chapters, jobs, options)
    status = 0
    for chapter in chapters:
        status = max(status, execute(chapter, args.profile, args.out, force=args.force))
    return status


if __name__ == "__main__":
    sys.exit(main())
