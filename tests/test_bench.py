"""`make bench`: the FLOP count is right, a measurement runs and reports, the committed
report covers every workload and reaches the provenance page."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import keras
import pytest

from livro import book

sys.path.insert(0, str(book.ROOT / "scripts"))
import bench  # noqa: E402

L = keras.layers


def test_flops_of_a_small_model_by_hand():
    model = keras.Sequential([
        keras.Input(shape=(8, 8, 2)),
        L.Conv2D(4, 3, padding="same"),            # 64 positions · 9 · 2 · 4 multiply-adds
        L.DepthwiseConv2D(3, padding="same"),      # 64 · 9 · 4
        L.SeparableConv2D(6, 3, padding="same"),   # 64 · 4 · (9 + 6)
        L.MaxPooling2D(2),                         # not counted
        L.Flatten(),
        L.Dense(10),                               # 96 · 10
    ])
    assert bench.forward_flops(model) == 2 * (64 * 9 * 2 * 4 + 64 * 9 * 4 + 64 * 4 * 15 + 96 * 10)


def test_flops_of_mobilenet_v2_match_the_published_figure():
    # MobileNetV2 (alpha 1.0, 224×224) is published as ~300 million multiply-adds with its
    # classifier; without it, 1280·1000 fewer. The count must land near 2 × that.
    base = keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False, weights=None)
    gflops = bench.forward_flops(base) / 1e9
    assert 0.55 < gflops < 0.62, gflops


def test_every_workload_builds_with_a_positive_flop_count():
    for w in bench.WORKLOADS:
        model = w.build(keras)
        assert bench.forward_flops(model) > 0, w.name


def test_bench_models_have_the_chapters_parameter_counts():
    """The bench's builders mirror the chapters' models: their sizes must agree with what the
    executed chapters recorded, so a change of architecture in a chapter cannot go unnoticed."""
    checked, mismatches = 0, []
    for w in bench.WORKLOADS:
        if not w.params_key:
            continue
        chapter, key = w.params_key.split("/")
        recorded = book.read_results(chapter)["values"][key]
        built = w.build(keras).count_params()
        checked += 1
        if built != recorded:
            mismatches.append(f"{w.name}: bench builds {built} parameters, {chapter} recorded {recorded} ({key})")
    assert checked >= 8, checked
    assert not mismatches, "; ".join(mismatches)


def test_a_partial_bench_measures_and_leaves_the_report_alone(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(book.ROOT / "scripts" / "bench.py"), "--variants", "tensorflow,tensorflow@1",
         "--target", "0.2", "--out", str(out), "12 camadas"],
        capture_output=True, text=True, env=dict(os.environ), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| modulo4 | Ex. 6–7")]
    assert len(rows) == 1, proc.stdout
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert float(cells[4]) > 0  # images per second
    assert cells[9].endswith("×") and float(cells[9][:-1]) > 0, cells  # two one-core lanes, measured
    assert not out.exists()  # a partial run does not overwrite the report


def test_unknown_variant_is_one_clear_sentence():
    proc = subprocess.run([sys.executable, str(book.ROOT / "scripts" / "bench.py"), "--variants", "pytorch"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "variantes desconhecidas" in proc.stderr


REPORT = book.ROOT / "results" / "bench.json"


@pytest.mark.skipif(not REPORT.exists(), reason="no committed bench report yet (run `make bench`)")
def test_committed_report_covers_every_workload_and_reaches_the_provenance_page():
    report = json.loads(REPORT.read_text())
    measured = {r["workload"] for r in report["rows"] if r["variant"] == "tensorflow"}
    missing = [w.name for w in bench.WORKLOADS if w.name not in measured]
    assert not missing, f"results/bench.json is stale: re-run `make bench` (missing {missing})"
    assert 0 < report["peak_gflops"] < 10_000
    import build
    page = build.provenance_page()
    assert "make bench" in page and bench.table(report).splitlines()[2] in page
    assert "| trabalho2 | Ex. 5" in page and "| jax |" in page  # trabalho2 runs on JAX


def test_table_reports_each_chapter_on_its_own_backend():
    w = next(w for w in bench.WORKLOADS if w.chapter == "trabalho2")
    row = dict(workload=w.name, gflop_per_image=0.01, full_gflop=600.0)
    report = dict(peak_gflops=100.0, variants=["tensorflow", "jax"], rows=[
        {**row, "variant": "tensorflow", "step_ms": 20.0, "images_per_s": 1000.0, "gflops": 30.0,
         "full_estimate_s": 600.0},
        {**row, "variant": "jax", "step_ms": 10.0, "images_per_s": 2000.0, "gflops": 60.0,
         "full_estimate_s": 300.0},
    ])
    line = next(ln for ln in bench.table(report, backend_of=lambda c: "jax").splitlines() if w.name in ln)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2:9] == ["jax", "0.01", "2000", "60.0", "60 %", "5.0", "0.1"], cells
    assert cells[9] == "2.00×"  # jax relative to TensorFlow
    line = next(ln for ln in bench.table(report, backend_of=lambda c: "tensorflow").splitlines() if w.name in ln)
    assert [c.strip() for c in line.strip("|").split("|")][2:5] == ["tensorflow", "0.01", "1000"]


def test_lanes_take_the_longest_job_first_as_each_frees():
    assert bench.lanes_makespan([3, 5, 3, 4], 2) == 8  # 5 | 4, then 3 → 7 | 3 → 8
    assert bench.lanes_makespan([10, 1, 1], 2) == 10
    assert bench.lanes_makespan([2, 2], 1) == 4


def test_one_core_variant_is_reported_as_two_lanes_with_their_total():
    rows, variants = [], ["tensorflow", "tensorflow@1"]
    for w in bench.WORKLOADS:
        for v, step in (("tensorflow", 20.0), ("tensorflow@1", 30.0)):
            rows.append(dict(workload=w.name, variant=v, gflop_per_image=0.01, full_gflop=600.0, step_ms=step,
                             images_per_s=1000.0, gflops=10.0, full_estimate_s=600.0 * step / 20))
    text = bench.table(dict(peak_gflops=100.0, variants=variants, rows=rows), backend_of=lambda c: "tensorflow")
    first = next(ln for ln in text.splitlines() if bench.WORKLOADS[0].name in ln)
    assert first.rstrip(" |").endswith("1.33×")  # 2 lanes × 20 ms / 30 ms
    chapters = {w.chapter: 0.0 for w in bench.WORKLOADS}
    for w in bench.WORKLOADS:
        chapters[w.chapter] += 900.0
    lanes = next(ln for ln in text.splitlines() if "faixas de 1 núcleo" in ln)
    assert f"**{bench.lanes_makespan(list(chapters.values()), 2) / 60:.1f}**" in lanes


def test_regeneration_span_runs_from_the_first_start_to_the_last_end():
    import build

    provs = [dict(date="2026-01-01T02:00:00+00:00", wall_seconds=7200.0),  # 00:00 → 02:00
             dict(date="2026-01-01T01:00:00+00:00", wall_seconds=1800.0),  # 00:30 → 01:00
             dict(date="2026-01-01T01:50:00+00:00", wall_seconds=3000.0)]  # 01:00 → 01:50
    assert build.regeneration_span(provs) == (12000.0, 7200.0)
    page = build.provenance_page()
    assert "## Última execução de cada capítulo" in page and "Do primeiro início ao último fim" in page


def test_the_floor_per_chapter_adds_up_to_the_tables_total():
    import json

    report = json.loads((bench.ROOT / "results" / "bench.json").read_text())
    floor = bench.floor_seconds(report)
    total = [line for line in bench.table(report).splitlines() if line.startswith("| **total** ")][0]
    assert f"**{sum(floor.values()) / 60:.1f}**" in total


def test_the_provenance_page_compares_a_forced_regeneration_with_the_floor(tmp_path, monkeypatch):
    import json
    import shutil

    import build

    (tmp_path / "results").mkdir()
    shutil.copy(bench.ROOT / "results" / "bench.json", tmp_path / "results")
    floor = bench.floor_seconds(json.loads((tmp_path / "results" / "bench.json").read_text()))
    record = {"date": "2026-12-01T12:00:00+00:00", "force": True, "lanes": 2, "cpu": "AMD EPYC (2 cores)",
              "makespan_s": 2 * floor["modulo3"], "lane_seconds_sum": 100.0, "trainings_run_seconds_sum": 90.0,
              "chapters": {"modulo3": {"start_s": 0.0, "seconds": 100.0, "exit_status": 0,
                                       "trainings_run_s": {"ex8": 90.0}, "trainings_loaded": []}}}
    (tmp_path / "results" / "regeneracao.json").write_text(json.dumps(record))
    monkeypatch.setattr(build, "ROOT", tmp_path)
    text = "\n".join(build.forced_regeneration_section())
    assert "| modulo3 | 0 | 100 | 1 | 0 |" in text
    assert "levou 2\\.0× o piso" in text, text  # the page's decimal comma comes at build time
    record["chapters"]["apendice"] = record["chapters"]["modulo3"]  # a chapter bench does not measure
    (tmp_path / "results" / "regeneracao.json").write_text(json.dumps(record))
    text = "\n".join(build.forced_regeneration_section())
    assert "× o piso" not in text and "ainda não mede as cargas de apendice" in text, text


TREINO_CALL = re.compile(r'livro\.treino\(\s*(?:f?"(?P<name>[^"]+)"|(?P<variable>[A-Za-z_]\w*)\s*,)')


def trainings_in_book() -> dict[str, set[str]]:
    """{chapter: names} of the `livro.treino(...)` calls in the code cells of book/*.md: a
    literal name, an f-string's template as written ("ex7_A_s{s}"), and, for a name held in a
    variable (a loop over trainings), the names of the chapter's committed cache entries."""
    found: dict[str, set[str]] = {}
    for path in sorted(book.BOOK.glob("*.md")):
        if not path.read_text().startswith("---\njupytext:"):
            continue
        code = "\n".join(c.source for c in book.code_cells(book.read_source(path.stem)))
        for m in TREINO_CALL.finditer(code):
            names = found.setdefault(path.stem, set())
            if m["name"]:
                names.add(m["name"])
                continue
            entries = {p.stem for p in (book.ROOT / "results" / "treinos" / path.stem).glob("*.json")}
            assert entries, (f"{path.name}: livro.treino({m['variable']}, ...) names its training in a "
                             "variable and no committed cache entry says which names it takes")
            names |= entries
    return found


def _accounts_for(key: str, name: str) -> bool:
    """The workload's training `key` ("ex7_A_s{s}": {s} stands for anything) covers `name`."""
    pattern = "".join(".+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}]*\})", key))
    return key == name or re.fullmatch(pattern, name) is not None


def test_every_training_of_the_book_has_a_workload_and_no_workload_names_a_missing_one():
    found = trainings_in_book()
    assert {"estudo_de_caso", "modulo3", "modulo4", "trabalho2", "controle_trabalho2"} <= set(found), found
    keys = {(w.chapter, k) for w in bench.WORKLOADS for k in w.trainings}
    missing = sorted(f"{c}/{n}" for c, names in found.items() for n in names
                     if not any(kc == c and _accounts_for(k, n) for kc, k in keys))
    assert not missing, f"trainings with no bench workload (add them to a Workload's trainings): {missing}"
    stale = sorted(f"{c}/{k}" for c, k in keys if not any(_accounts_for(k, n) for n in found.get(c, ())))
    assert not stale, f"bench workloads name trainings the chapters no longer have: {stale}"


def test_workload_counts_are_the_sums_of_their_trainings_and_follow_early_stopping():
    w = next(w for w in bench.WORKLOADS if "treino10" in w.trainings)
    assert w.full_train == sum(t for t, _ in w.trainings.values())
    # treino 10 stops early: its count follows the epochs its committed cache entry ran
    assert w.trainings["treino10"][0] == 40_000 * bench.epochs_run("estudo_de_caso", "treino10", 100)
    assert bench.epochs_run("estudo_de_caso", "no_such_training", 7) == 7


def test_the_provenance_page_adds_up_a_book_regenerated_in_parts(tmp_path, monkeypatch):
    import shutil

    sys.path.insert(0, str(book.ROOT / "scripts"))
    import build

    (tmp_path / "results").mkdir()
    shutil.copy(bench.ROOT / "results" / "bench.json", tmp_path / "results")
    floor = bench.floor_seconds(json.loads((tmp_path / "results" / "bench.json").read_text()))
    chapters = sorted(floor)

    def run(names, makespan):
        return {"date": "2026-12-02T03:00:00+00:00", "force": True, "lanes": 2, "cpu": "AMD EPYC (2 cores)",
                "makespan_s": makespan, "lane_seconds_sum": makespan, "trainings_run_seconds_sum": makespan,
                "chapters": {c: {"start_s": 0.0, "seconds": makespan, "exit_status": 0,
                                 "trainings_run_s": {"t": 1.0}, "trainings_loaded": []} for c in names}}

    total = sum(floor.values())
    runs = [run(chapters[:1], 0.75 * total), run(chapters[1:], 0.75 * total)]
    (tmp_path / "results" / "regeneracao.json").write_text(json.dumps({"runs": runs}))
    monkeypatch.setattr(build, "ROOT", tmp_path)
    text = "\n".join(build.forced_regeneration_section())
    assert "em 2 execuções forçadas" in text and "**O livro inteiro**" in text
    assert "levou 1\\.5× o piso" in text, text
    (tmp_path / "results" / "regeneracao.json").write_text(json.dumps({"runs": runs[1:]}))
    assert "O livro inteiro" not in "\n".join(build.forced_regeneration_section())  # one part is missing
