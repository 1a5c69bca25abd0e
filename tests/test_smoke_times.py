"""The smoke profile's measured time: recorded by a maintainer's smoke execution in the
committed results/tempos_smoke.json (livro.smoke_times), shown in the notebooks' profile table."""
from __future__ import annotations

import json
import sys

import pytest

from conftest import load_script
from livro import book, smoke_times
from test_livro import CHAPTER

sys.path.insert(0, str(book.ROOT / "scripts"))
import notebooks  # noqa: E402  (scripts/notebooks.py)

PROV = {"profile": "smoke", "wall_seconds": 42.4, "date": "2026-11-30T22:10:00+00:00",
        "cpu": "AMD EPYC 7B13", "cores_used": 1, "gpu": None, "code_sha256": "abc"}


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """book.RESULTS in a temporary folder holding a copy of the committed modulo2.json."""
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "modulo2.json").write_text((book.RESULTS / "modulo2.json").read_text())
    monkeypatch.setattr(book, "RESULTS", folder)
    return folder


def smoke_row(tmp_path) -> str:
    times = notebooks.run_times("modulo2", smoke_dir=tmp_path / "no-smoke-run")
    return next(line for line in notebooks.profile_cell_text("modulo2", times).splitlines()
                if line.startswith('| `"smoke"`'))


def test_without_the_file_the_smoke_time_is_not_measured(results_dir, tmp_path):
    assert not (results_dir / "tempos_smoke.json").exists()
    assert smoke_row(tmp_path).endswith("não medido nesta edição |")


def test_a_recorded_time_is_shown(results_dir, tmp_path):
    message = smoke_times.record("modulo2", {"provenance": PROV})
    assert "recorded" in message
    assert json.loads((results_dir / "tempos_smoke.json").read_text())["modulo2"]["wall_seconds"] == 42.4
    assert smoke_row(tmp_path).endswith("| 42 s (AMD EPYC 7B13, 1 núcleo usado, em 2026-11-30) |")
    # another chapter's entry is added beside it; a chapter absent from the file stays unmeasured
    smoke_times.record("modulo3", {"provenance": {**PROV, "wall_seconds": 600.0}})
    assert set(smoke_times.read()) == {"modulo2", "modulo3"}
    assert "smoke" not in notebooks.run_times("trabalho2", smoke_dir=tmp_path / "no-smoke-run")


def test_a_run_with_cached_trainings_is_not_recorded(results_dir):
    message = smoke_times.record("modulo2", {"provenance": PROV, "treinos": {"ex7": {"loaded": True}}})
    assert "cache" in message and not (results_dir / "tempos_smoke.json").exists()


def test_a_runs_own_out_folder_leaves_the_committed_file_alone(tmp_path, monkeypatch):
    for name in ("BOOK", "EXECUTED", "RESULTS"):
        (tmp_path / name).mkdir()
        monkeypatch.setattr(book, name, tmp_path / name)
    (tmp_path / "BOOK" / "t.md").write_text(CHAPTER.replace("PROSE", "Texto.").replace("CODE", ""))
    execute = load_script("execute")
    assert execute.execute("t", "smoke", tmp_path / "out") == 0
    assert json.loads((tmp_path / "out" / "t.json").read_text())["provenance"]["wall_seconds"] > 0
    assert not (tmp_path / "RESULTS" / "tempos_smoke.json").exists()


def test_a_maintainers_smoke_run_records_its_time(results_dir, tmp_path, monkeypatch, capsys):
    """Without --out, execute() hands the run's results to smoke_times.record (the kernel is
    stubbed: the previous test runs a real one)."""
    execute = load_script("execute")
    monkeypatch.setattr(execute, "ROOT", tmp_path)  # its default folder, _build/smoke, under tmp_path

    def executed(chapter, profile, source, nb_target, results_target, *a, **k):
        results_target.parent.mkdir(parents=True, exist_ok=True)
        results_target.write_text(json.dumps({"provenance": PROV}))
        return 0

    monkeypatch.setattr(execute, "_execute_locked", executed)
    assert execute.execute("modulo2", "smoke", None) == 0
    assert "smoke time 42.4 s recorded" in capsys.readouterr().out
    assert smoke_times.read()["modulo2"]["wall_seconds"] == 42.4
    monkeypatch.setattr(execute, "_execute_locked", lambda *a, **k: 1)  # a failed run records nothing
    (results_dir / "tempos_smoke.json").unlink()
    assert execute.execute("modulo2", "smoke", None) == 1
    assert not (results_dir / "tempos_smoke.json").exists()
