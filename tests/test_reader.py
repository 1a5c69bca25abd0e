"""The book as a reader meets it: tables rendered, Portuguese interface, numbered exercises,
decimal comma, and (in Chromium) no answer before its solution is opened, a visible switcher."""
from __future__ import annotations

import html
import re

import pytest

from livro import book
from livro.reader import decimal_comma
from test_build import built  # noqa: F401  (the strict build of _build/html)
from test_site import CHROMIUM, browser, page, site  # noqa: F401  (two-version site, Chromium)

# Interface strings of the themes, myst-nb and the provenance page that must not reach the reader.
ENGLISH = ["Show code cell", "Hide code cell", "Back to top", "Choose version", "Skip to main content",
           "Toggle hidden content", "Search...", "Color mode", "System Settings", "On this page",
           "Site navigation", "Toggle primary sidebar", "Toggle secondary sidebar", "Version warning",
           "next page", "previous page", "Please activate JavaScript", "Solution to", "Version switcher",
           ">inside<", ">deviation<", ">no-data<", ">outside<"]

# A statement of an answer: "Resposta: (d)", "Alternativa implicada pelos números: (d)", "alternativa (d)".
ANSWER = re.compile(r"Resposta:\s*\(([a-e])\)|[Aa]lternativa[^()\n]{0,60}?\s\**\(([a-e])\)")


def pages(root):
    return sorted(p for p in root.rglob("*.html") if "_static" not in p.parts)


def reader_text(raw: str) -> str:
    """The text of a page outside scripts and code blocks (code and code outputs keep English)."""
    raw = re.sub(r"<(script|style|pre)\b.*?</\1>", "", raw, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def test_tables_render(built):  # noqa: F811
    raw_lines = {f"{p.relative_to(built)}: {line.strip()[:60]}" for p in pages(built)
                 for line in reader_text(p.read_text()).splitlines() if re.fullmatch(r"\s*\|.*\|\s*", line)}
    assert not raw_lines, "Markdown tables shown as raw text:\n" + "\n".join(sorted(raw_lines))


def test_interface_is_portuguese(built):  # noqa: F811
    found = [f"{p.relative_to(built)}: {s!r}" for p in pages(built)
             for s in ENGLISH if s in re.sub(r"<(script|pre)\b.*?</\1>", "", p.read_text(), flags=re.S)]
    assert not found, "English interface strings in the book:\n" + "\n".join(found)


@pytest.mark.parametrize("chapter", book.chapters())
def test_exercises_are_numbered(built, chapter):  # noqa: F811
    raw = (built / "book" / f"{chapter}.html").read_text()
    title = r'<div class="{kind}[^"]*"[^>]*>\s*<p class="admonition-title">(.*?)</p>'

    def titles(kind):
        return [" ".join(reader_text(t).split()) for t in re.findall(title.format(kind=kind), raw, re.S)]

    exercises = [int(n) for n in re.findall(rf'<div class="exercise[^"]*" id="{chapter}-ex(\d+)"', raw)]
    assert len(exercises) == len(titles("exercise")), f"{chapter}: an exercise has no {chapter}-exN label"
    for number, text in zip(exercises, titles("exercise")):
        assert re.match(rf"Exercício {number}\b", text), f"{chapter}: exercise {number} is titled {text!r}"
    solved = re.findall(rf'<div class="solution[^"]*" id="[^"]*">\s*<p class="admonition-title">.*?href="#{chapter}-ex(\d+)"',
                        raw, re.S)
    for number, text in zip(solved, titles("solution")):
        assert text.startswith(f"Solução do Exercício {number}"), f"{chapter}: solution titled {text!r}"


def test_decimal_comma():
    assert decimal_comma("0.9783 e 42.21 %, faixa [0.45, 0.55]") == "0,9783 e 42,21 %, faixa [0,45; 0,55]"
    assert decimal_comma("[0, 0.20]") == "[0; 0,20]"
    for kept in ("keras 3.5.0", "cifar10.npz", "v2026.1", "mobilenet_v2_1.0_224", "(50000, 32)", "[50000, 10]"):
        assert decimal_comma(kept) == kept


@pytest.mark.parametrize("chapter", book.chapters())
def test_glued_values_read_in_portuguese(built, chapter):  # noqa: F811
    raw = (built / "book" / f"{chapter}.html").read_text()
    dotted = re.findall(r'class="pasted-text">([^<]*\d\.\d[^<]*|True|False)<', raw)
    assert not dotted, f"{chapter}: glued values shown with a decimal point or in English: {dotted[:5]}"


def test_prose_and_tables_have_a_decimal_comma(built):  # noqa: F811
    """Outside code, code outputs and math, no page shows a number with a decimal point."""
    dotted = []
    for path in pages(built / "book"):
        raw = re.sub(r'<(code)\b.*?</\1>|<(span|div) class="math.*?</\2>', "", path.read_text(), flags=re.S)
        dotted += [f"{path.name}: {m.group(0).strip()}" for m in
                   re.finditer(r".{0,25}(?<![\w.])\d+\.\d+(?![\w.]).{0,10}", reader_text(raw))]
    assert not dotted, "numbers with a decimal point:\n" + "\n".join(dotted[:20])


# --- in Chromium --------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")


def answers(chapter):
    return {int(name.removeprefix("ex")): ex["answer"]
            for name, ex in book.read_spec(chapter)["exercises"].items() if ex.get("answer")}


@needs_chromium
@pytest.mark.parametrize("chapter", book.chapters())
def test_no_answer_before_the_click(site, page, chapter):  # noqa: F811
    """Before a solution is opened the page states no answer; opening exercise N's shows its letter."""
    _, url = site
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{url}/latest/book/{chapter}.html", wait_until="load")
    before = page.inner_text("article")
    stated = [m.group(0) for m in ANSWER.finditer(before)]
    assert not stated, f"{chapter}: answers readable before any solution is opened: {stated}"
    assert not re.search(r"\bresposta\s*\t", before), f"{chapter}: a table with a 'resposta' column is visible"
    english = page.evaluate("() => [...document.querySelectorAll('[aria-label], [title]')].map(e => "
                            "(e.getAttribute('aria-label') || '') + ' ' + (e.getAttribute('title') || ''))")
    labels = sorted({label.strip() for label in english for s in ENGLISH if s in label})
    assert not labels, f"{chapter}: labels or tooltips in English: {labels}"
    for number, letter in answers(chapter).items():
        solution = page.locator(f"div.solution:has(a[href='#{chapter}-ex{number}'])").first
        solution.locator("button.toggle-button").first.click()  # the title also holds a link
        solution.get_by_text(f"Resposta: ({letter})").first.wait_for(state="visible", timeout=5000)


def test_site_interface_is_portuguese(site):  # noqa: F811
    """The versioned site's pages (with the version switcher), both editions."""
    out, _ = site
    found = [f"{p.relative_to(out)}: {s!r}" for p in pages(out / "latest")
             for s in ENGLISH if s in re.sub(r"<(script|pre)\b.*?</\1>", "", p.read_text(), flags=re.S)]
    assert not found, "English interface strings in the site:\n" + "\n".join(found[:20])


@needs_chromium
@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)])
def test_version_switcher_is_fully_visible(site, page, width, height, tmp_path):  # noqa: F811
    _, url = site
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{url}/latest/book/modulo3.html", wait_until="networkidle")
    button = page.locator(".version-switcher__button").first
    button.wait_for(state="visible", timeout=5000)
    page.screenshot(path=str(tmp_path / f"switcher-{width}.png"))
    box = button.bounding_box()
    assert box and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width, (
        f"the version switcher lies outside the {width}×{height} window: {box}")
    # each corner and the centre of the button is the button itself, not something drawn over it
    covered = page.evaluate("""b => { const r = b.getBoundingClientRect();
        return [[r.left + 2, r.top + 2], [r.right - 2, r.top + 2], [r.left + 2, r.bottom - 2],
                [r.right - 2, r.bottom - 2], [(r.left + r.right) / 2, (r.top + r.bottom) / 2]]
          .map(([x, y]) => document.elementFromPoint(x, y))
          .filter(e => !e || !b.contains(e)).map(e => e ? e.tagName + '.' + e.className : 'nothing'); }""",
                            button.element_handle())
    assert not covered, f"the version switcher is partly hidden at {width}×{height} under: {covered} ({tmp_path})"
