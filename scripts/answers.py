"""Answer report: every checkable quantity of every chapter, from committed outputs.

    python scripts/answers.py [CHAPTER ...]

Prints one row per quantity (chapter, exercise, quantity, regenerated value,
documented range, verdict) and writes them to _build/answers.json. Trains nothing.
Exit status 1 when a quantity is outside its range without a registered deviation, or
when a registered deviation moved back inside, further than its tolerance, or changed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livro import book  # noqa: E402


def short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def main(argv=None) -> int:
    from livro.integrity import BookError

    known = book.chapters()
    names = (argv if argv is not None else sys.argv[1:]) or known
    unknown = [name for name in names if name not in known]
    if unknown:
        print(f"{unknown[0]!r} is not a chapter of this book; the chapters are: {', '.join(known)}.")
        return 2
    try:
        rows = [row for name in names for row in book.check(name)]
    except BookError as error:  # a malformed answer key or results file: one sentence
        print(error)
        return 2
    header = ("chapter", "exercise", "quantity", "value", "documented", "verdict")
    table = [header] + [
        (r.chapter, r.exercise, r.quantity, short(r.value), r.expected, r.verdict) for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)))
    for r in rows:
        if r.verdict == "deviation":
            print(f"  deviation: {r.chapter} {r.quantity} (registered {short(r.registered)}, "
                  f"tolerance {r.tolerance}): {r.note}")
        elif r.verdict == "no-data":
            print(f"  no-data: {r.chapter} {r.quantity}: {r.note}")
    out = ROOT / "_build" / "answers.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps([r.as_dict() for r in rows], indent=1, ensure_ascii=False))
    counts = {v: sum(r.verdict == v for r in rows) for v in ("inside", "deviation", "no-data", "outside", "missing")}
    print(", ".join(f"{n} {v}" for v, n in counts.items()) + f" → {out.relative_to(ROOT)}")
    bad = [r for r in rows if r.verdict in ("outside", "missing")]
    for r in bad:
        print(book.problem(r))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
