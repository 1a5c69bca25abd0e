"""The student edition holds no answer in any file it publishes (issue #18, item 1).

Builds the student edition (scripts/build.py --edition student) and reads every file of
it: pages, _sources (the downloadable notebooks), the search index, the provenance page.
Each file is searched for answer statements ("Resposta: (b)", "Alternativa implicada
...: (d)", a table column "resposta"), for text taken from every solution block of the
chapters' sources, for every line of an assignment's solution code (cells tagged
`hide-input`), and the search index for words that only solutions use. A hit names the
file and the exercise.
"""
from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import jupytext
import nbformat
import pytest

from livro import book

sys.path.insert(0, str(book.ROOT / "scripts"))
import notebooks  # noqa: E402  (scripts/notebooks.py)

CHAPTERS = [c for c in book.chapters() if (book.EXECUTED / f"{c}.ipynb").exists()]
SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "\u00a0": " "})
SOLUTION = re.compile(r"^(`{3,}|:{3,})\{solution\}\s*(\S+)[^\n]*\n(.*?)^\1\s*$", re.M | re.S)
WORD = re.compile(r"[a-zà-ú]{4,}")


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text.translate(SMART_QUOTES)).strip()


def file_text(path) -> str:
    """What a reader of this file sees: a page's text, a notebook's strings, any other text."""
    raw = path.read_text(errors="replace")
    if path.suffix == ".html":
        raw = html.unescape(re.sub(r"<[^>]+>", " ", raw))
    elif path.suffix == ".ipynb":
        nb = json.loads(raw)
        raw = "\n".join(_strings(nb))
    return normalized(raw)


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        if all(isinstance(x, str) for x in node):
            yield "".join(node)
        else:
            for x in node:
                yield from _strings(x)
    elif isinstance(node, dict):
        for x in node.values():
            yield from _strings(x)


def solutions(chapter: str) -> list[tuple[str, str]]:
    """(exercise label, body) of every `{solution}` block of the chapter's source."""
    return [(m.group(2), m.group(3)) for m in SOLUTION.finditer((book.BOOK / f"{chapter}.md").read_text())]


def snippets(body: str) -> list[str]:
    """Runs of plain prose in a solution (no markup, at least 30 characters), as rendered."""
    body = re.sub(r"^:\w+:.*$", "", body, flags=re.M)  # directive options
    runs = re.findall(r"[A-Za-zÀ-ú][A-Za-zÀ-ú ,;]{29,}", re.sub(r"\s+", " ", body))
    return [normalized(r).rstrip(" ,;") for r in runs]


def solution_code(chapter: str) -> list[str]:
    """Lines of the cells tagged `hide-input` (an assignment's solution code)."""
    nb = jupytext.read(book.BOOK / f"{chapter}.md")
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "hide-input" in cell.metadata.get("tags", []):
            lines += [normalized(ln) for ln in cell.source.splitlines()
                      if len(ln.strip()) >= 25 and not ln.strip().startswith("#")]
    return lines


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("aluno")
    proc = subprocess.run([sys.executable, str(book.ROOT / "scripts" / "build.py"), "--edition", "student",
                           "--strict", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, "The student edition did not build:\n" + (proc.stdout + proc.stderr)[-3000:]
    files = [p for p in sorted(out.rglob("*")) if p.is_file()
             and p.suffix in {".html", ".ipynb", ".js", ".txt", ".md", ".json", ".py"}]
    return out, {p.relative_to(out): file_text(p) for p in files}


def test_no_answer_statement_anywhere(edition):
    out, texts = edition
    hits = [f"{path}: {m.group(0)!r}" for path, text in texts.items()
            for m in notebooks.ANSWER_STATEMENT.finditer(text)]
    hits += [f"{p.relative_to(out)}: a table column 'resposta'" for p in out.rglob("*.html")
             if re.search(r"<th[^>]*>\s*(<p>)?\s*resposta\s*(</p>)?\s*</th>", p.read_text(), re.I)]
    assert not hits, "The student edition states answers:\n" + "\n".join(hits)


SOLVED = [c for c in CHAPTERS if solutions(c)]


def test_chapters_have_solutions_to_look_for():
    assert len(SOLVED) >= 4, f"only {SOLVED} have {{solution}} blocks: the search below would test little"


@pytest.mark.parametrize("chapter", SOLVED)
def test_no_solution_text_anywhere(edition, chapter):
    _, texts = edition
    # words that the questions or other pages also use are no evidence of a leak
    elsewhere = normalized(" ".join(SOLUTION.sub("", p.read_text()) for p in book.BOOK.glob("*.md")))
    hits, searched = [], 0
    for label, body in solutions(chapter):
        for snippet in snippets(body):
            if snippet in elsewhere:
                continue
            searched += 1
            hits += [f"{path}: {label}: {snippet!r}" for path, text in texts.items() if snippet in text]
    for line in solution_code(chapter):
        if line in elsewhere:
            continue
        searched += 1
        hits += [f"{path}: solution code of {chapter}: {line!r}" for path, text in texts.items() if line in text]
    assert searched >= len(solutions(chapter)), f"{chapter}: too few distinctive solution snippets to search"
    assert not hits, "Solution text in the student edition:\n" + "\n".join(sorted(set(hits))[:30])


def test_search_index_has_no_word_only_solutions_use(edition):
    """Sphinx's search index keeps stemmed words, not sentences: no stem of a word that
    only solutions use (no other source text or executed output has it) may be there."""
    from sphinx.search.pt import SearchPortuguese

    out, _ = edition
    inside, outside = set(), set()
    for chapter in CHAPTERS:
        source = (book.BOOK / f"{chapter}.md").read_text()
        inside |= {w for _, body in solutions(chapter) for w in WORD.findall(body.lower())}
        outside |= set(WORD.findall(SOLUTION.sub("", source).lower()))
        executed = nbformat.read(book.EXECUTED / f"{chapter}.ipynb", as_version=4)
        outside |= set(WORD.findall(" ".join(_strings([c.get("outputs", []) for c in executed.cells])).lower()))
    for page in book.BOOK.glob("*.md"):
        if page.stem not in CHAPTERS:
            outside |= set(WORD.findall(page.read_text().lower()))
    outside |= set(WORD.findall(file_text(out / "book" / "proveniencia.html").lower()))
    stem = SearchPortuguese({}).stem
    only = {stem(w): w for w in inside - outside}
    outside_stems = {stem(w) for w in outside}
    index = (out / "searchindex.js").read_text()
    terms = json.loads(index[index.index("(") + 1:index.rindex(")")])["terms"]
    # a term mapped to no page (left by an earlier incremental build) finds nothing
    leaked = sorted(f"{word} ({s})" for s, word in only.items()
                    if terms.get(s) not in (None, []) and s not in outside_stems)
    assert len(only) > 20, "too few solution-only words to test the search index"
    assert not leaked, "Words only solutions use are in the student search index: " + ", ".join(leaked[:30])


def test_student_notebooks_keep_no_answer_glue(edition):
    out, _ = edition
    for chapter in CHAPTERS:
        nb = json.loads((out / "_sources" / "book" / f"{chapter}.ipynb").read_text())
        names = {o.get("metadata", {}).get("scrapbook", {}).get("name") for c in nb["cells"]
                 for o in c.get("outputs", [])}
        leaked = names & notebooks.answer_keys(book.read_spec(chapter))
        assert not leaked, f"_sources/book/{chapter}.ipynb keeps the glued answer letters {sorted(leaked)}"


def test_provenance_page_lists_no_implied_letter(edition):
    out, texts = edition
    page = texts[out.joinpath("book", "proveniencia.html").relative_to(out)]
    for chapter in CHAPTERS:
        spec = book.read_spec(chapter)
        keys = notebooks.answer_keys(spec)
        labels = {q.get("label") for _, q in book.quantities(spec) if q["key"] in keys and q.get("label")}
        shown = [label for label in labels if normalized(label) in page]
        assert not shown, f"the student provenance page lists {chapter}'s implied letters: {shown}"


def test_notebook_links_point_to_student_notebooks(edition):
    out, _ = edition
    for chapter in CHAPTERS:
        page = (out / "book" / f"{chapter}.html").read_text()
        links = set(re.findall(r'href="([^"]+\.ipynb)"', page))
        assert links, f"book/{chapter}.html links to no notebook"
        for link in links:
            assert link == f"../_sources/book/{chapter}.ipynb" or "/aluno/_sources/book/" in link, (
                f"book/{chapter}.html of the student edition links to {link}, not its student notebook")
