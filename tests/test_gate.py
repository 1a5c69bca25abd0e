"""One gate before publishing (issue 24, items 2 and 6): `scripts/build.py --check` (`make check`,
run first by `make site`, which Publish runs) fails with one sentence per stale chapter, forged
output or unregistered out-of-range answer; `make book` builds and prints them last; values
from results files are escaped in the generated pages. Faults go into a temporary copy."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import load_script
from livro import book


def load_build():
    return load_script("build")


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """book/, executed/, results/ and answers/ copied; book's paths point at the copies."""
    for name in ("BOOK", "EXECUTED", "RESULTS", "ANSWERS"):
        shutil.copytree(getattr(book, name), tmp_path / name.lower())
        monkeypatch.setattr(book, name, tmp_path / name.lower())
    return tmp_path


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_make_check_passes_on_the_committed_book():
    proc = subprocess.run([sys.executable, str(book.ROOT / "scripts" / "build.py"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"make check: all {len(book.chapters())} chapters can be published."


def test_gate_names_each_problem_in_one_sentence(copy, capsys):
    edit(copy / "book" / "modulo2.md", "```{code-cell} ipython3\n", "```{code-cell} ipython3\n# mudança\n")
    edit(copy / "executed" / "modulo3.ipynb", "probabilidade: 1,25e-05", "probabilidade: 9,99e-05")
    devs = yaml.safe_load((copy / "answers" / "deviations.yml").read_text())
    devs.pop("modulo4.ex9_train_acc")  # an out-of-range value no longer registered
    (copy / "answers" / "deviations.yml").write_text(yaml.safe_dump(devs, allow_unicode=True))
    build = load_build()
    found = build.gate()
    assert len(found) == 3, found
    assert found[0].startswith("book/modulo2.md is stale: its code changed after its last execution")
    assert found[1].startswith("executed/modulo3.ipynb was edited after its execution")
    assert found[2].startswith("modulo4 ex9 (ex9_train_acc): regenerated value ") and found[2].endswith(
        "is not registered in answers/deviations.yml.")
    assert build.main(["--check"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"ERROR: {s}" for s in found] + ["3 problem(s): the book cannot be published until they are fixed."]


def test_strict_build_refuses_before_building(copy, monkeypatch, capsys):
    edit(copy / "executed" / "modulo3.ipynb", "probabilidade: 1,25e-05", "probabilidade: 9,99e-05")
    build = load_build()
    monkeypatch.setattr(build, "build", lambda *a, **k: pytest.fail("--strict built a book with a problem"))
    assert build.main(["--strict", "--edition", "both"]) == 1
    assert capsys.readouterr().out.startswith("ERROR: executed/modulo3.ipynb was edited after its execution")


def test_local_build_prints_the_problems_last(copy, monkeypatch, capsys):
    """`make book` builds for local reading; before, its warning was the second line of a long log."""
    edit(copy / "executed" / "modulo3.ipynb", "probabilidade: 1,25e-05", "probabilidade: 9,99e-05")
    build = load_build()
    monkeypatch.setattr(build, "build", lambda *a, **k: print("… the long log of jupyter-book …") or 0)
    assert build.main([]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-2] == "WARNING: 1 problem keeps this book from being published (make check, make site refuse it):"
    assert out[-1].startswith("- executed/modulo3.ipynb was edited after its execution")


def test_make_site_and_publish_run_the_gate_first():
    dry = subprocess.run(["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "site"], cwd=book.ROOT,
                         capture_output=True, text=True).stdout.splitlines()
    assert "scripts/build.py --check" in dry[0] and "scripts/site.py" in dry[1], dry
    publish = yaml.safe_load((book.ROOT / ".github" / "workflows" / "publish.yml").read_text())
    runs = [step.get("run", "") for step in publish["jobs"]["build"]["steps"]]
    assert any(run.startswith("make site") for run in runs)


def test_results_values_are_escaped_in_the_built_page(copy, tmp_path):
    """HTML placed in a results file (the CPU name, a recorded value) stays text on the page."""
    results_path = copy / "results" / "modulo3.json"
    results = json.loads(results_path.read_text())
    results["provenance"]["cpu"] = "<script>alert(2)</script> | {glue:text}`x`"
    results["values"]["ex8_opcao"] = "<img src=x onerror=alert(1)>"
    results_path.write_text(json.dumps(results))
    page = load_build().provenance_page()
    site = tmp_path / "site"
    site.mkdir()
    (site / "conf.py").write_text("extensions = ['myst_parser']\n")
    (site / "index.md").write_text(page)
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(site), str(site / "_html")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    html = (site / "_html" / "index.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt; | {glue:text}`x`" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
