"""The lane schedule of `make execute` (scripts/execute.py --jobs)."""
from __future__ import annotations

import sys

from livro import book

sys.path.insert(0, str(book.ROOT / "scripts"))
import execute  # noqa: E402  (scripts/execute.py)


def test_lanes_start_with_the_chapter_that_took_longest(monkeypatch):
    walls = {"curto": 10.0, "longo": 5000.0, "novo": None, "medio": 900.0}
    monkeypatch.setattr(execute.book, "read_results", lambda chapter: (
        None if walls[chapter] is None else {"provenance": {"wall_seconds": walls[chapter]}}))
    # A chapter never executed has no time yet: it goes first rather than risk ending last.
    assert execute.longest_first(["curto", "longo", "novo", "medio"]) == ["novo", "longo", "medio", "curto"]
