"""Collect every committed full execution's checked stochastic values into results/history.json.

    python scripts/history.py          # rewrite results/history.json from git history
    python scripts/history.py --check  # exit 1 if the file is not what git history gives

Reads each version of results/<chapter>.json in the git history (``git log``/``git show``),
keeps one entry per execution (its provenance date; executions that only loaded the same
stored trainings count once, under the latest) and, from it, the values of the answer-key
quantities that are not marked ``deterministic``. Trains nothing.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livro import book, history  # noqa: E402


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def stochastic_keys(chapter: str) -> list[str]:
    return [q["key"] for _, q in book.quantities(book.read_spec(chapter)) if not q.get("deterministic")]


def executions(chapter: str) -> list[dict]:
    """One entry per recorded full execution of the chapter, oldest first."""
    path = f"results/{chapter}.json"
    keys = stochastic_keys(chapter)
    versions = [json.loads(git("show", f"{commit}:{path}"))
                for commit in reversed(git("log", "--format=%H", "--", path).split())]
    if (ROOT / path).exists():
        versions.append(json.loads((ROOT / path).read_text()))  # the working tree's, if newer
    return entries(versions, keys)


def entries(versions: list[dict], keys: list[str]) -> list[dict]:
    """The history entries of a chapter's results files (oldest first), one per measurement."""
    found: dict[object, dict] = {}
    for results in versions:
        prov = results.get("provenance", {})
        if prov.get("profile") != "full" or "date" not in prov:
            continue
        # One entry per measurement: a later commit of the same execution (re-stamped) replaces
        # it, and so does a later execution that only loaded the same stored trainings
        # (livro.treino) instead of running them again — it re-reads, it does not measure.
        used = results.get("treinos") or {}
        same = tuple(sorted((name, u.get("trained")) for name, u in used.items())) if used else prov["date"]
        found[same] = {
            "date": prov["date"],
            "code_sha256": prov.get("code_sha256", "")[:12],
            "backend": prov.get("backend"),
            "values": {k: results["values"][k] for k in keys if results.get("values", {}).get(k) is not None},
        }
    return sorted(found.values(), key=lambda e: e["date"])


def collect() -> dict:
    return {chapter: executions(chapter) for chapter in book.chapters()}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = json.dumps(collect(), indent=1, ensure_ascii=False) + "\n"
    if "--check" in argv:
        if not history.HISTORY.exists() or history.HISTORY.read_text() != text:
            print(f"{history.HISTORY.relative_to(ROOT)} is not what the git history of results/ gives; "
                  f"run: python scripts/history.py")
            return 1
        return 0
    history.HISTORY.write_text(text)
    print(f"{history.HISTORY.relative_to(ROOT)}: " + ", ".join(f"{c} {len(e)}" for c, e in collect().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
