"""The published site, as a reader sees it: headless Chromium against a local server.

Builds a two-version site (HEAD's committed tree as a release, and the working
tree as `latest`), serves it on 127.0.0.1 and drives Chromium with Playwright.
"""
from __future__ import annotations

import functools
import html as htmllib
import re
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from livro import book

# The CI workflow's browser step names the runner's own browser in LIVRO_BROWSER.
CHROMIUM = (os.environ.get("LIVRO_BROWSER") or shutil.which("chromium") or shutil.which("chromium-browser")
            or shutil.which("google-chrome"))
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
CHAPTER = "modulo3"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, str(book.ROOT / "scripts" / "site.py"), "--out", str(out), "--tags", "v0-teste=HEAD"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, "make site failed:\n" + (proc.stdout + proc.stderr)[-3000:]
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


def text_of(page_html: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", "", page_html)).split())


def test_site_layout(site):
    out, _ = site
    versions = json.loads((out / "versions.json").read_text())
    assert [v["version"] for v in versions] == ["v0-teste", "v0-teste-aluno", "latest", "latest-aluno"]
    assert 'url=/v0-teste/' in (out / "index.html").read_text()  # the newest release
    for version in ("v0-teste", "latest"):
        assert (out / version / "book" / f"{CHAPTER}.html").exists()
        assert (out / version / "aluno" / "book" / f"{CHAPTER}.html").exists()


def test_chapter_loads_with_its_figures(site, page):
    _, url = site
    page.goto(f"{url}/latest/book/{CHAPTER}.html", wait_until="load")
    images = page.eval_on_selector_all("article img", "els => els.map(e => [e.src, e.naturalWidth])")
    assert images, "the chapter page shows no figure"
    broken = [src for src, width in images if width == 0]
    assert not broken, f"broken images: {broken}"


def test_answer_is_collapsed_until_clicked(site, page):
    _, url = site
    page.goto(f"{url}/latest/book/{CHAPTER}.html", wait_until="load")
    solution = page.locator("div.solution").first
    answer = solution.get_by_text("Resposta:").first
    assert not answer.is_visible(), "the first answer is visible before it is opened"
    solution.locator(".admonition-title, .toggle-button").first.click()
    answer.wait_for(state="visible", timeout=5000)


def test_version_switcher_lists_versions(site, page):
    _, url = site
    page.goto(f"{url}/latest/book/{CHAPTER}.html", wait_until="networkidle")
    button = page.locator(".version-switcher__button").first
    button.click()
    items = page.locator(".version-switcher__menu a")
    items.first.wait_for(state="visible", timeout=5000)
    names = [t.strip() for t in items.all_inner_texts()]
    assert any("v0-teste" in n for n in names) and any("latest" in n for n in names), names
    assert any("aluno" in n for n in names), names


def test_search_finds_a_chapter_word(site, page):
    _, url = site
    page.goto(f"{url}/latest/search.html?q=hinge", wait_until="load")
    link = page.locator(f"#search-results a[href*='{CHAPTER}']").first
    link.wait_for(timeout=10000)


def test_student_edition_has_no_answers(site, page):
    out, url = site
    full = (out / "latest" / "book" / f"{CHAPTER}.html").read_text()
    assert "Resposta:" in full and 'class="solution' in full
    for chapter in book.chapters():
        html = (out / "latest" / "aluno" / "book" / f"{chapter}.html").read_text()
        assert "Resposta:" not in html and 'class="solution' not in html, f"{chapter}: answers in the student edition"
        solution_code = [" ".join(c.source.split()) for c in book.read_source(chapter).cells
                         if "hide-input" in c.metadata.get("tags", []) and c.source.strip()]
        student_text = text_of(html)
        full_text = text_of((out / "latest" / "book" / f"{chapter}.html").read_text())
        for line in solution_code:
            assert line in full_text, f"{chapter}: solution code missing from the full edition: {line[:60]}"
            assert line not in student_text, f"{chapter}: solution code in the student edition: {line[:60]}"
    page.goto(f"{url}/latest/aluno/book/{CHAPTER}.html", wait_until="load")
    assert page.locator("div.solution").count() == 0
    assert "Resposta:" not in page.inner_text("body")
