"""Which chapters the *Execute chapters* workflow runs on the GPU runner.

    python scripts/plan.py [CHAPTER ...]   # those chapters
    python scripts/plan.py --stale         # the chapters whose committed execution is out of date
    python scripts/plan.py                 # every chapter

Prints `chapters=<JSON list>` (the line the workflow appends to $GITHUB_OUTPUT) and,
on stderr, why each chapter is in or out. A chapter is out of date when it was never
executed in full, its code changed since (livro.book.staleness), or a library it
recorded is no longer at the version requirements.txt pins (the GPU build `tensorflow`
and `tensorflow-cpu` of the same version count as the same library). Needs only
PyYAML, jupytext and NumPy (the `plan` job installs those, at requirements.txt's pins).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livro import book  # noqa: E402


def library(name: str) -> str:
    name = re.sub(r"[-_.]+", "-", name).lower()
    return "tensorflow" if name == "tensorflow-cpu" else name


def pinned(path: Path = ROOT / "requirements.txt") -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==")
            found[library(name.split("[")[0])] = version.strip()
    return found


def out_of_date(chapter: str, pins: dict[str, str]) -> str | None:
    """Why the chapter's committed execution is out of date, or None."""
    reason = book.staleness(chapter)
    if reason:
        return reason
    recorded = book.read_results(chapter)["provenance"].get("versions", {})
    moved = [f"{name} {version} → {pins[library(name)]}" for name, version in recorded.items()
             if library(name) in pins and pins[library(name)] != version]
    if moved:
        return f"book/{chapter}.md was executed with other library versions than requirements.txt pins ({', '.join(moved)})"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="execute these (default: every chapter, or the stale ones)")
    parser.add_argument("--stale", action="store_true", help="only the chapters whose execution is out of date")
    args = parser.parse_args(argv)
    known = book.chapters()
    unknown = [c for c in args.chapters if c not in known]
    if unknown:
        raise SystemExit(f"scripts/plan.py: no chapter named {', '.join(unknown)} (chapters: {', '.join(known)}).")
    if args.chapters:
        chosen = args.chapters
        print(f"requested: {', '.join(chosen)}", file=sys.stderr)
    elif args.stale:
        pins, chosen = pinned(), []
        for chapter in known:
            reason = out_of_date(chapter, pins)
            print(f"{chapter}: {reason or 'up to date'}", file=sys.stderr)
            if reason:
                chosen.append(chapter)
    else:
        chosen = known
        print(f"every chapter: {', '.join(chosen)}", file=sys.stderr)
    print("chapters=" + json.dumps(chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
