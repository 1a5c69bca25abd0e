"""Nothing forged, stale or half-written reaches the published book (issue 24).

Each test injects one fault, as a careless or hurried maintainer would, into a temporary
copy (never the working tree) and checks that it is refused with one sentence naming the
file. The gate is `scripts/build.py --check` (`make check`, run first by `make site`).
"""
from __future__ import annotations

import json
import shutil

import pytest

from livro import book, integrity



@pytest.fixture
def committed(tmp_path, monkeypatch):
    """A copy of the committed modulo3 (source, executed notebook, results) that tests may edit."""
    for name, folder, suffix in (("BOOK", book.BOOK, ".md"), ("EXECUTED", book.EXECUTED, ".ipynb"),
                                 ("RESULTS", book.RESULTS, ".json")):
        (tmp_path / name.lower()).mkdir()
        shutil.copy(folder / f"modulo3{suffix}", tmp_path / name.lower() / f"modulo3{suffix}")
        monkeypatch.setattr(book, name, tmp_path / name.lower())
    trainings = book.RESULTS / "treinos" / "modulo3"  # the stored trainings the execution used
    if (book.ROOT / "results" / "treinos" / "modulo3").is_dir():
        shutil.copytree(book.ROOT / "results" / "treinos" / "modulo3", trainings)
    return tmp_path


def edit(path, old, new, count=1):
    text = path.read_text()
    assert text.count(old) >= count, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("chapter", book.chapters())
def test_committed_pair_is_intact(chapter):
    """The committed executed notebook holds the chapter's code, shows the recorded values and
    matches the seal written by `make execute`."""
    assert integrity.problems(chapter) == [], "\n".join(integrity.problems(chapter))


def test_untouched_copy_has_no_problem(committed):
    assert integrity.problems("modulo3") == []


def test_code_change_with_a_hand_made_hash_is_an_error(committed):
    """Change a code line and type the new code hash into the results file: before, the
    staleness check passed and the page showed the old code."""
    edit(committed / "book" / "modulo3.md", 'livro.record("ex1_quadratica", perdas["quadrática"].mean())',
         'livro.record("ex1_quadratica", perdas["quadrática"].mean() * 1)')
    results_path = committed / "results" / "modulo3.json"
    results = json.loads(results_path.read_text())
    results["provenance"]["code_sha256"] = book.code_hash(book.read_source("modulo3"))
    results["seal"]["results_sha256"] = integrity.results_digest(results)  # even a re-sealed file
    results_path.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    assert book.staleness("modulo3") is None  # the hash alone is fooled …
    found = integrity.problems("modulo3")
    assert len(found) == 1 and "does not hold the code of book/modulo3.md (code cell" in found[0]


def test_edited_glued_number_is_an_error(committed):
    """0.1421 → 0.1431 inside the executed notebook: before, the page showed it everywhere."""
    edit(committed / "executed" / "modulo3.ipynb", '"0.14212992266604257"', '"0.14312992266604257"')
    found = integrity.problems("modulo3")
    assert any("shows ex1_quadratica = 0.14312992266604257 but results/modulo3.json recorded "
               "0.14212992266604257" in p for p in found), found
    assert any("executed/modulo3.ipynb was edited after its execution" in p for p in found), found


def test_edited_printed_output_is_an_error(committed):
    """1,25e-05 → 9,99e-05 in a printed output: before, nothing noticed."""
    edit(committed / "executed" / "modulo3.ipynb", "probabilidade: 1,25e-05", "probabilidade: 9,99e-05")
    assert integrity.problems("modulo3") == [
        "executed/modulo3.ipynb was edited after its execution, or comes from another run than "
        "results/modulo3.json (it no longer matches the seal); restore it with git checkout "
        "executed/modulo3.ipynb or run: make execute CHAPTER=modulo3"]


def test_edited_results_file_is_an_error(committed):
    edit(committed / "results" / "modulo3.json", '"ex1_quadratica": 0.14212992266604257',
         '"ex1_quadratica": 0.14312992266604257')
    found = integrity.problems("modulo3")
    assert any("results/modulo3.json was edited after its execution" in p for p in found), found


def test_truncated_results_file_is_one_sentence(committed):
    path = committed / "results" / "modulo3.json"
    path.write_text(path.read_text()[:500])
    with pytest.raises(integrity.BookError, match=r"^results/modulo3.json is not valid JSON \(line \d+, column \d+"):
        book.read_results("modulo3")
    assert integrity.problems("modulo3")[0].startswith("results/modulo3.json is not valid JSON")


def test_stale_chapter_is_named(committed):
    edit(committed / "book" / "modulo3.md", 'livro.record("ex1_quadratica", perdas["quadrática"].mean())',
         'livro.record("ex1_quadratica", perdas["quadrática"].mean() * 1)')
    assert integrity.problems("modulo3") == [book.staleness("modulo3")]
    assert "book/modulo3.md is stale" in book.staleness("modulo3")


def test_reseal_is_for_verified_migrations_only(committed):
    """A migration that edits a results file re-seals it only if the pair still holds together."""
    path = committed / "results" / "modulo3.json"
    results = json.loads(path.read_text())
    results["provenance"]["note"] = "migrated"
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    assert "results/modulo3.json was edited after its execution" in integrity.problems("modulo3")[0]
    import re

    assert re.match(r"modulo3: \d+ code cells equal the source's, \d+ glued values equal the recorded ones",
                    integrity.reseal("modulo3"))
    assert integrity.problems("modulo3") == []
    edit(committed / "executed" / "modulo3.ipynb", '"0.14212992266604257"', '"0.14312992266604257"')
    with pytest.raises(integrity.BookError, match="shows ex1_quadratica = 0.14312992266604257"):
        integrity.reseal("modulo3")
