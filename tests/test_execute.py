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
    assert json.loads((tmp_path / "regeneracao.json").read_text()) == {"runs": [record]}
    assert record["makespan_s"] == 1600.0 and record["lane_seconds_sum"] == 1540.0 and record["lanes"] == 2
    assert list(record["chapters"]) == ["outro", "capitulo"]  # in the order they started
    assert record["chapters"]["capitulo"]["trainings_run_s"] == {"novo": 1100.5}
    assert record["chapters"]["capitulo"]["trainings_loaded"] == ["antigo"]
    assert record["trainings_run_seconds_sum"] == 1100.5 and record["force"] is True


def test_a_forced_run_keeps_earlier_runs_while_they_hold_a_chapter_no_later_run_redid(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(execute.book, "RESULTS", tmp_path)
    started = execute.dt.datetime(2026, 12, 2, 3, 0, tzinfo=execute.dt.timezone.utc).timestamp()
    older = {"date": "2026-12-01T23:43:33+00:00", "force": True, "lanes": 2, "cpu": "x", "makespan_s": 10.0,
             "lane_seconds_sum": 10.0, "trainings_run_seconds_sum": 5.0,
             "chapters": {"a": {"start_s": 0, "seconds": 10.0, "exit_status": 0, "trainings_run_s": {},
                                "trainings_loaded": []}}}
    (tmp_path / "regeneracao.json").write_text(json.dumps(older))  # the one-run file written before 2026-12-02
    execute.record_regeneration({"b": (0.0, 20.0, 0)}, started, started + 20, [0, 1], True)
    runs = json.loads((tmp_path / "regeneracao.json").read_text())["runs"]
    assert [list(r["chapters"]) for r in runs] == [["a"], ["b"]]
    execute.record_regeneration({"a": (0.0, 9.0, 0)}, started, started + 9, [0, 1], True)
    runs = json.loads((tmp_path / "regeneracao.json").read_text())["runs"]
    assert [list(r["chapters"]) for r in runs] == [["b"], ["a"]], "the run 'a' was redone: its older run goes"


def test_in_a_forced_run_the_idle_lane_takes_trainings_from_the_end(tmp_path, monkeypatch):
    """The chapter's lane trains from the first training on; the helper from the last one back,
    skipping what this run trained, what it was already sent to, and stopping where a process
    holds a training (the chapter's lane got there)."""
    import fcntl
    import json

    monkeypatch.setattr(execute.book, "RESULTS", tmp_path)
    monkeypatch.setenv(execute.cache.RUN_ENV, "esta-execucao")
    order = ["t1", "t2", "t3", "t4", "t5"]
    (tmp_path / "cap.json").write_text(json.dumps({"treinos": {n: {} for n in order}}))
    assert execute.recorded_trainings("cap") == order and execute.recorded_trainings("nunca_executado") == []
    orders = {"cap": order}
    folder = tmp_path / "treinos" / "cap"
    folder.mkdir(parents=True)

    def stored(name, run):
        (folder / f"{name}.json").write_text(json.dumps({"provenance": {"run": run}}))

    stored("t5", "outra-execucao")  # trained by an earlier run: FORCE trains it again
    assert execute.next_from_the_end(orders, set()) == ("cap", "t5")
    stored("t5", "esta-execucao")
    assert execute.next_from_the_end(orders, set()) == ("cap", "t4")
    assert execute.next_from_the_end(orders, {("cap", "t4")}) == ("cap", "t3")
    with open(folder / ".t3.lock", "w") as lock:  # the chapter's lane is training t3
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert execute.cache.held(folder / "t3.json")
        assert execute.next_from_the_end(orders, {("cap", "t4")}) is None
    assert not execute.cache.held(folder / "t3.json")
    assert execute.next_from_the_end({**orders, "outro": []}, {("cap", n) for n in order}) is None
