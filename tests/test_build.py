"""The book builds with no Sphinx warnings and shows the regenerated numbers."""
from __future__ import annotations

import html
import re
import subprocess
import sys

import pytest

from livro import book
from livro.reader import glued_text

HTML = book.ROOT / "_build" / "html"


@pytest.fixture(scope="module")
def built():
    proc = subprocess.run(
        [sys.executable, str(book.ROOT / "scripts" / "build.py"), "--strict"],
        capture_output=True, text=True,
    )
    warnings = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "WARNING" in ln or "ERROR" in ln]
    assert proc.returncode == 0 and not warnings, "The book build failed or warned:\n" + "\n".join(
        warnings or (proc.stdout + proc.stderr).splitlines()[-20:]
    )
    return HTML


SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


def page_text(path):
    """The page's text (Sphinx's typographic quotes turned back into plain ones) and its HTML."""
    raw = path.read_text()
    return html.unescape(re.sub(r"<[^>]+>", " ", raw)).translate(SMART_QUOTES), raw


@pytest.mark.parametrize("chapter", book.chapters())
def test_chapter_page_exists(built, chapter):
    assert (built / "book" / f"{chapter}.html").exists(), f"_build/html/book/{chapter}.html was not built"


@pytest.mark.parametrize("chapter", book.chapters())
def test_glued_numbers_appear_in_html(built, chapter):
    """Each `{glue:text}` reference shows the recorded value, formatted as asked (decimal comma, sim/não)."""
    text, _ = page_text(built / "book" / f"{chapter}.html")
    values = book.read_results(chapter)["values"]
    source = (book.BOOK / f"{chapter}.md").read_text()
    refs = re.findall(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`", source)
    assert refs or chapter == "intro"
    for key, fmt in refs:
        value = values[key]
        shown = glued_text(format(value, fmt) if fmt else str(value))
        assert shown in text, f"book/{chapter}: glued {key} should show {shown!r} in the HTML"


@pytest.mark.parametrize("chapter", book.chapters())
def test_solutions_are_hidden_until_opened(built, chapter):
    _, raw = page_text(built / "book" / f"{chapter}.html")
    solutions = re.findall(r'<div class="([^"]*\bsolution\b[^"]*)"', raw)
    with_letters = [e for e, spec in book.read_spec(chapter)["exercises"].items() if spec.get("answer")]
    solved = book.BOOK.joinpath(f"{chapter}.md").read_text().count("```{solution}")
    assert len(solutions) == solved, f"{chapter}: {solved} solutions in the source, {len(solutions)} in the page"
    assert solutions or not with_letters, f"{chapter}: answer letters in its key but no solutions in the page"
    assert all("dropdown" in cls for cls in solutions), f"{chapter}: a solution is not a dropdown"


@pytest.mark.parametrize("chapter", book.chapters())
def test_substitutions_are_filled(built, chapter):
    """The phrases scripts/build.py writes from recorded data ({{ faixas }}, {{ hist_<key> }})
    appear as text, not as their names."""
    from livro.substitutions import substitutions

    text, _ = page_text(built / "book" / f"{chapter}.html")
    source = (book.BOOK / f"{chapter}.md").read_text()
    names = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", source))
    assert "{{" not in text, f"_build/html/book/{chapter}.html shows an unfilled substitution"
    phrases = substitutions(chapter)
    from livro.reader import decimal_comma  # the page shows every number with a decimal comma

    missing = sorted(n for n in names
                     if " ".join(decimal_comma(phrases[n]).split()) not in " ".join(text.split()))
    assert not missing, f"_build/html/book/{chapter}.html lacks the phrases of {missing}"


def test_the_intro_lists_every_chapter_with_the_time_a_reader_waits():
    """The intro's table names every chapter of the table of contents, and a chapter that loaded
    its trainings shows the time they took when they ran, not the seconds its loading took."""
    from conftest import load_script

    build_script = load_script("build")
    table = build_script.intro_substitutions()["capitulos"]
    for chapter in book.chapters():
        assert f"{{doc}}`{chapter}`" in table, f"the intro's table leaves out {chapter}"
    results = book.read_results("estudo_de_caso")
    if results and any(u.get("loaded") for u in results.get("treinos", {}).values()):
        row = next(line for line in table.splitlines() if "`estudo_de_caso`" in line)
        assert build_script.duration_text(book.reader_seconds(results)) in row
        # a training loaded (from an earlier run, or trained meanwhile by a helper lane) counts the
        # seconds it took to train, not the loading: beyond the execution's own wall time, and far
        # beyond it when the execution loaded every training
        used = results["treinos"].values()
        factor = 10 if all(u.get("loaded") for u in used) else 1
        assert book.reader_seconds(results) > factor * results["provenance"]["wall_seconds"]
