"""Editions (edicoes.yml): defined from the history, compared, built or skipped one by one."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from livro import book

sys.path.insert(0, str(book.ROOT / "scripts"))
import editions  # noqa: E402  (scripts/editions.py)

spec = importlib.util.spec_from_file_location("livro_site", book.ROOT / "scripts" / "site.py")
site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(site)


def test_at_least_two_editions_from_this_history_with_different_numbers():
    found = editions.load()
    assert len(found) >= 2, "edicoes.yml defines fewer than two editions"
    for e in found:
        proc = subprocess.run(["git", "cat-file", "-e", f"{e.commit}^{{commit}}"], cwd=book.ROOT)
        assert proc.returncode == 0, f"edicoes.yml: edition {e.name}'s commit {e.commit} is not in this repository"
    old, new = editions.snapshot(found[0].commit), editions.snapshot(found[-1].commit)
    assert any(old[ch]["values"] != new[ch]["values"] for ch in new), "the editions record the same numbers"


def test_a_malformed_edition_is_one_clear_error(tmp_path):
    path = tmp_path / "edicoes.yml"
    path.write_text('- name: "1"\n  commit: abc\n  date: 2026-01-01\n')
    with pytest.raises(SystemExit, match="edition 1 lacks notes"):
        editions.load(path)


def test_changes_between_editions_name_values_verdicts_and_reexecutions():
    old = editions.Edition("A", "a", "", "")
    new = editions.Edition("B", "b", "", "")
    before = {"modulo3": {"date": "2026-01-01T10:00:00+00:00", "values": {"x": 1.0, "y": 2},
                          "verdicts": {"x": ("Ex. 1", "acurácia", "inside")}},
              "modulo2": {"date": "2026-01-01T10:00:00+00:00", "values": {"z": 3}, "verdicts": {}}}
    after = {"modulo3": {"date": "2026-02-01T10:00:00+00:00", "values": {"x": 0.5, "y": 2},
                         "verdicts": {"x": ("Ex. 1", "acurácia", "deviation")}},
             "modulo2": before["modulo2"]}
    text = "\n".join(editions.compare(old, new, before, after))
    assert "- modulo3: 2026-01-01 10:00 → 2026-02-01 10:00" in text and "- modulo2" not in text
    assert "| modulo3 | Ex. 1 | acurácia | dentro | desvio registrado |" in text
    assert "| modulo3 | `x` | 1 | 0.5 |" in text and "`y`" not in text and "`z`" not in text


def test_the_page_compares_each_pair_of_consecutive_editions():
    page = editions.changes_page()
    names = [e.name for e in editions.load()] + ["latest (main)"]
    for old, new in zip(names, names[1:]):
        assert f"## `{old}` → `{new}`" in page


def test_an_edition_that_fails_is_skipped_and_the_others_still_publish(tmp_path, monkeypatch, capsys):
    def fake_build(tree, version, base, out, ref="HEAD"):
        if version == "quebrada":
            return "the build of quebrada failed: Sphinx warning"
        out.mkdir(parents=True)
        return None

    monkeypatch.setattr(site, "build_version", fake_build)
    monkeypatch.setattr(site, "export", lambda name, ref: (_ for _ in ()).throw(
        subprocess.CalledProcessError(128, "git archive", stderr=b"fatal: not a valid object name"))
        if ref == "0" * 40 else tmp_path)
    built = site.build_editions({"nova": "HEAD", "quebrada": "HEAD", "sumida": "0" * 40}, "/", tmp_path / "site")
    assert built == ["nova"]
    log = capsys.readouterr().out
    assert "EDITION SKIPPED: quebrada: the build of quebrada failed" in log
    assert "EDITION SKIPPED: sumida: its commit" in log and "not a valid object name" in log


def test_latest_failing_fails_the_site(tmp_path, monkeypatch):
    monkeypatch.setattr(site, "build_version", lambda tree, version, base, out: f"the build of {version} failed")
    with pytest.raises(SystemExit, match="the build of latest failed"):
        site.main(["--out", str(tmp_path / "site"), "--tags"])


def test_verdict_words_are_defined_once(monkeypatch):
    """The editions page and the provenance page (scripts/build.py) both read livro.answer_keys."""
    from conftest import load_script
    from livro import answer_keys

    build = load_script("build")
    monkeypatch.setitem(answer_keys.VERDICT_WORDS, "inside", "dentro-da-fonte-única")
    before = {"m": {"date": "", "values": {}, "verdicts": {"x": ("Ex. 1", "acurácia", "inside")}}}
    after = {"m": {"date": "", "values": {}, "verdicts": {"x": ("Ex. 1", "acurácia", "no-data")}}}
    text = "\n".join(editions.compare(editions.Edition("A", "a", "", ""), editions.Edition("B", "b", "", ""),
                                      before, after))
    assert "| m | Ex. 1 | acurácia | dentro-da-fonte-única | sem dados |" in text
    row = book.Row("m", "Ex. 1", "x", "acurácia", 0.9, None, "[0.8, 1]", "inside")
    assert build.row_verdict_text(row) == "dentro-da-fonte-única"
