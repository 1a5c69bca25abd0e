"""Every chapter: smoke execution, answer keys, committed full outputs."""
from __future__ import annotations

import os
import re

import pytest

from conftest import run_smoke, smoke_results
from livro import book
from livro.integrity import BookError

CHAPTERS = book.chapters()


def test_there_are_chapters():
    assert "modulo3" in CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_parameters_cell_survives_jupytext(chapter):
    nb = book.read_source(chapter)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"book/{chapter}.md needs exactly one code cell tagged 'parameters'"
    assert re.search(r"^PROFILE\s*=\s*\"full\"", tagged[0].source, re.M), (
        f"book/{chapter}.md: the parameters cell must set PROFILE = \"full\""
    )


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_smoke_execution(chapter, smoke_dir):
    """The whole chapter runs end to end on the smoke profile; deterministic facts hold."""
    results = smoke_results(smoke_dir, chapter)
    assert results["provenance"]["profile"] == "smoke"
    if len(os.sched_getaffinity(0)) >= 2:  # the fixture runs the chapters in two one-core lanes
        assert results["provenance"]["cores_used"] == 1, "the lane's child was not pinned to one core"
    assert (smoke_dir / f"{chapter}.ipynb").exists()
    spec = book.read_spec(chapter)
    deterministic = {q["key"] for _, q in book.quantities(spec) if q.get("deterministic")}
    rows = [r for r in book.check(chapter, results, deviations={}) if r.quantity in deterministic]
    bad = [book.problem(r) for r in rows if r.verdict != "inside"]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_committed_execution_is_current(chapter):
    reason = book.staleness(chapter)
    assert reason is None, reason


def answer_rows():
    for chapter in CHAPTERS:
        try:
            rows = book.check(chapter)
        except BookError as error:  # a broken answer key or results file fails one test, by name
            yield pytest.param(error, id=f"{chapter}-answers")
            continue
        for row in rows:
            yield pytest.param(row, id=f"{chapter}-{row.quantity}")


@pytest.mark.parametrize("row", list(answer_rows()))
def test_committed_answer(row):
    """Each checkable quantity of the committed full run: inside, or a registered deviation that
    is still outside its band, no further from it than its value + tolerance and, for letters
    and sets, unchanged (book.judge_deviation); anything else fails, a deviation back inside too."""
    if isinstance(row, BookError):
        pytest.fail(str(row), pytrace=False)
    if row.verdict == "no-data":
        pytest.skip(f"{row.chapter} {row.quantity}: no data ({row.note})")
    assert row.verdict in ("inside", "deviation"), book.problem(row)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_letters_match_answer_key(chapter):
    """The letter in each solution of the chapter is the one in answers/<chapter>.yml."""
    text = (book.BOOK / f"{chapter}.md").read_text()
    spec = book.read_spec(chapter)
    found = dict(re.findall(r"```\{solution\}\s+\S+?-ex(\d+)[^\n]*\n(?::[^\n]*\n)*\s*\*\*Resposta: \(([a-e])\)", text))
    for ex_name, ex in spec["exercises"].items():
        number = ex_name.removeprefix("ex")
        if "answer" not in ex:
            continue
        assert number in found, f"book/{chapter}.md: no solution starting with **Resposta: (x)** for {ex_name}"
        assert found[number] == ex["answer"], (
            f"book/{chapter}.md {ex_name}: the solution says ({found[number]}), "
            f"answers/{chapter}.yml says ({ex['answer']})"
        )


def test_deviations_name_real_quantities():
    known = {f"{c}.{q['key']}" for c in CHAPTERS for _, q in book.quantities(book.read_spec(c))}
    unknown = set(book.read_deviations()) - known
    assert not unknown, f"answers/deviations.yml names quantities that no answer key has: {sorted(unknown)}"


def test_deviations_register_a_value_outside_the_band():
    """Each entry's value is outside its band (else it is no deviation); letters, sets and
    flags, which cannot move "further", have tolerance 0 (the format is DEVIATION_SCHEMA's)."""
    specs = {f"{c}.{q['key']}": q for c in CHAPTERS for _, q in book.quantities(book.read_spec(c))}
    for name, deviation in book.read_deviations().items():
        q = specs[name]
        assert not book.holds(q, deviation["value"]), (
            f"answers/deviations.yml {name}: the registered value {deviation['value']} is inside "
            f"the documented {book.expected_text(q)}; it is not a deviation")
        if book.distance(q, deviation["value"]) is None:
            assert deviation["tolerance"] == 0, (
                f"answers/deviations.yml {name}: {deviation['value']} is not a number, so its "
                f"tolerance must be 0 (any change fails)")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_glued_keys_come_from_the_execution(chapter):
    """Every {glue} reference in the prose names a value glued by the committed full run."""
    import nbformat

    text = (book.BOOK / f"{chapter}.md").read_text()
    keys = {m.split(":")[0] for m in re.findall(r"\{glue(?::\w+)?\}`([^`]+)`", text)}
    executed = nbformat.read(book.EXECUTED / f"{chapter}.ipynb", as_version=4)
    glued = {
        out.get("metadata", {}).get("scrapbook", {}).get("name")
        for cell in executed.cells if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    }
    missing = sorted(keys - glued)
    assert not missing, f"book/{chapter}.md glues keys that executed/{chapter}.ipynb does not glue: {missing}"


def _fit_calls(source: str):
    """The text of each Keras `.fit(` call (one with `epochs=`) in a code cell."""
    for match in re.finditer(r"\.fit\(", source):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(source)):
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            if depth == 0:
                break
        call = source[match.start():end + 1]
        if "epochs=" in call:
            yield call


# Chapters whose fit on arrays repeats one order on purpose: the control of that very effect.
FIXED_ORDER_ON_PURPOSE = {"controle_trabalho2": "compares the fixed order with a new one every epoch"}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_tensorflow_fits_draw_a_new_order_each_epoch(chapter):
    """On the TensorFlow backend a seeded fit on arrays repeats one batch order every epoch
    (CONTRIBUTING, item 3): each fit must use livro.shuffled_batches or say shuffle=False."""
    from test_livro import load_execute

    nb = book.read_source(chapter)
    if load_execute().keras_backend(nb) != "tensorflow":
        pytest.skip(f"{chapter} runs on another backend, whose fit reshuffles each epoch")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    bad = [" ".join(call.split())[:90] for call in _fit_calls(code)
           if "shuffled_batches(" not in call and "shuffle=False" not in call]
    if chapter in FIXED_ORDER_ON_PURPOSE:  # it must then show both orders, or it controls nothing
        assert bad and "shuffled_batches(" in code, f"book/{chapter}.md no longer compares the two orders"
        return
    assert not bad, (f"book/{chapter}.md has fit calls that repeat one batch order every epoch "
                     f"(use livro.shuffled_batches or shuffle=False): {bad}")


# Recorded values that measure time, not what the code computed.
TIMING = re.compile(r"(_wall_s|_s|_seconds|_s_por_epoca|_s_per_epoch|_segundos|_tempo)$|^tempo_|^hist_")


@pytest.fixture(scope="session")
def second_smoke_dir(tmp_path_factory):
    """The smoke execution of every chapter, a second time, into another folder (no cache shared)."""
    return run_smoke(tmp_path_factory.mktemp("smoke2"))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_same_code_gives_the_same_numbers(chapter, smoke_dir, second_smoke_dir):
    """Determinism: two executions of the same code on this machine record the same values, bit
    for bit (every training computes with one thread in its one-core lane, seeded), timings aside."""
    first, second = smoke_results(smoke_dir, chapter), smoke_results(second_smoke_dir, chapter)
    a = {k: v for k, v in first.get("values", {}).items() if not TIMING.search(k)}
    b = {k: v for k, v in second.get("values", {}).items() if not TIMING.search(k)}
    assert a, f"{chapter}: no recorded values to compare"
    same = lambda x, y: x == y or (isinstance(x, float) and isinstance(y, float) and x != x and y != y)  # noqa: E731 (nan)
    differ = sorted(k for k in a.keys() | b.keys() if not same(a.get(k), b.get(k)))
    assert not differ, f"{chapter}: same code, different values: " + ", ".join(
        f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in differ[:8])
