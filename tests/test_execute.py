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


FAKE_LANE = """
import json, os, sys, time
log = os.environ["LANE_LOG"]
with open(log, "a") as out:
    out.write(json.dumps({"argv": sys.argv[1:], "cores": sorted(os.sched_getaffinity(0))}) + "\\n")
time.sleep(4 if "--fill" not in sys.argv else 60)  # a helper lane would outlive its chapter
"""


def test_an_idle_lane_helps_with_the_trainings_of_a_running_chapter(tmp_path, monkeypatch):
    """One chapter on two cores: its own lane on one core, a helper lane (--fill) on the other,
    stopped when the chapter's lane ends."""
    if len(execute.os.sched_getaffinity(0)) < 2:
        import pytest

        pytest.skip("needs two cores")
    fake = tmp_path / "lane.py"
    fake.write_text(FAKE_LANE)
    log = tmp_path / "lanes.jsonl"
    monkeypatch.setenv("LANE_LOG", str(log))
    monkeypatch.setattr(execute, "__file__", str(fake))
    start = execute.time.time()
    assert execute.run_lanes(["capitulo"], 2, ["--profile", "smoke", "--out", str(tmp_path), "--force"]) == 0
    assert execute.time.time() - start < 30, "the helper lane was not stopped with its chapter"
    import json

    lanes = [json.loads(line) for line in log.read_text().splitlines()]
    lanes.sort(key=lambda lane: "--fill" in lane["argv"])  # both start at once: either may log first
    assert len(lanes) == 2 and lanes[0]["argv"] == ["capitulo", "--profile", "smoke", "--out", str(tmp_path), "--force"]
    assert lanes[1]["argv"] == ["capitulo", "--fill", "--profile", "smoke", "--out", str(tmp_path)]
    assert len(lanes[0]["cores"]) == len(lanes[1]["cores"]) == 1 and lanes[0]["cores"] != lanes[1]["cores"]


def test_a_forced_regeneration_records_its_makespan_and_which_trainings_ran(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(execute.book, "RESULTS", tmp_path)
    folder = tmp_path / "treinos" / "capitulo"
    folder.mkdir(parents=True)
    started = execute.dt.datetime(2026, 12, 1, 12, 0, tzinfo=execute.dt.timezone.utc).timestamp()
    (folder / "antigo.json").write_text(json.dumps({"provenance": {"date": "2026-11-30T10:00:00+00:00", "seconds": 50}}))
    (folder / "novo.json").write_text(json.dumps({"provenance": {"date": "2026-12-01T12:20:00+00:00", "seconds": 1100.5}}))
    record = execute.record_regeneration({"capitulo": (2.0, 1500.0, 0), "outro": (0.5, 40.0, 0)},
                                         started, started + 1600, [0, 1], True)
    assert record == json.loads((tmp_path / "regeneracao.json").read_text())
    assert record["makespan_s"] == 1600.0 and record["lane_seconds_sum"] == 1540.0 and record["lanes"] == 2
    assert list(record["chapters"]) == ["outro", "capitulo"]  # in the order they started
    assert record["chapters"]["capitulo"]["trainings_run_s"] == {"novo": 1100.5}
    assert record["chapters"]["capitulo"]["trainings_loaded"] == ["antigo"]
    assert record["trainings_run_seconds_sum"] == 1100.5 and record["force"] is True
