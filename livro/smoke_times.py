"""The measured wall time of each chapter's smoke execution, committed in results/tempos_smoke.json.

A maintainer's ``scripts/execute.py CHAPTER --profile smoke`` (its default folder, not a
test's ``--out``) records the chapter's entry; ``scripts/notebooks.py`` shows it in the
notebook's "escolha o perfil" table. A chapter absent from the file is "não medido".
An execution that loaded a training from the cache did not take the time a reader would
wait, so it is not recorded.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from livro import book

FILE_NAME = "tempos_smoke.json"
KEPT = ("wall_seconds", "date", "cpu", "cores_used", "gpu", "code_sha256")


def path() -> Path:
    return book.RESULTS / FILE_NAME  # read at call time: tests point book.RESULTS elsewhere


def read() -> dict[str, dict]:
    """{chapter: {wall_seconds, date, cpu, cores_used, gpu, code_sha256}}; {} without the file."""
    from livro.integrity import read_json

    return read_json(path()) if path().is_file() else {}


def record(chapter: str, results: dict) -> str:
    """Write the chapter's entry from a smoke execution's results; returns what it did, in a sentence."""
    prov = results.get("provenance", {})
    if prov.get("profile") != "smoke" or prov.get("wall_seconds") is None:
        return f"no smoke provenance with a wall time; {FILE_NAME} not changed"
    loaded = [name for name, use in (results.get("treinos") or {}).items() if use.get("loaded")]
    if loaded:
        return (f"{len(loaded)} training(s) came from the cache, so the time is not a reader's; "
                f"{FILE_NAME} not changed (--force trains again)")
    import fcntl  # POSIX: a maintainer's execution (scripts/execute.py needs it too)

    target = path()
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)  # two lanes of --jobs 2 may finish together
        times = read()
        times[chapter] = {key: prov.get(key) for key in KEPT}
        with tempfile.NamedTemporaryFile("w", dir=target.parent, prefix=f".{FILE_NAME}.", delete=False) as tmp:
            json.dump(dict(sorted(times.items())), tmp, indent=2, ensure_ascii=False)
            tmp.write("\n")
        os.replace(tmp.name, target)
    finally:
        os.close(directory)  # releases the lock
    return f"smoke time {prov['wall_seconds']} s recorded in {FILE_NAME}"
