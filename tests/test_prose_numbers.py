"""No typed results: every number in a chapter's prose is glued, documented, or a named setting
(livro/prose.py); the phrases the build writes from recorded data exist (livro/substitutions.py)."""
from __future__ import annotations

import json
import re

import pytest

from livro import book, history, prose, substitutions

CHAPTERS = book.chapters()


def chapter_text(chapter: str) -> str:
    return (book.BOOK / f"{chapter}.md").read_text()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_prose_types_no_result(chapter):
    found = prose.typed_numbers(chapter, chapter_text(chapter))
    assert not found, (
        f"book/{chapter}.md types numbers in its prose that no execution produced; glue a recorded "
        f"value, label a documented one, or name a course setting in livro.prose.ALLOWED:\n"
        + "\n".join(f"  line {line}: {number!r} in: {sentence[:160]}" for line, number, sentence in found))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_allowed_numbers_are_in_use(chapter):
    """The allow-list stays short: a number no sentence of the chapter needs is removed."""
    used: set = set()
    prose.typed_numbers(chapter, chapter_text(chapter), used)
    unused = sorted(set(prose.ALLOWED.get(chapter, {})) - used)
    assert not unused, f"livro.prose.ALLOWED['{chapter}'] lists numbers book/{chapter}.md no longer needs: {unused}"


SAMPLE = """---
jupytext: {}
---
# Capítulo

A rede chegou a 0,8431 de acurácia.

A rede chegou a {glue:text}`acc:.4f` de acurácia, {{ hist_acc }}.

O curso documenta 0,8431 de acurácia.

O livro obteve {glue:text}`acc:.4f` (documentado: 0,8431) e 0,77 na validação, longe da faixa que o enunciado dá.

Das 5 perdas, {glue:text}`n` diferem das documentadas, e o livro erra 3 delas.

Treinamos por 50 épocas (como no Exercício 7), com filtros 3×3 e `batch_size=32`; $x^2 + 1$.

```{exercise}
:label: ch-ex1
Treine por 73 épocas.
```

```{solution} ch-ex1
**Resposta: (a)**. O treino deu 0,91.
```

| rede | acurácia (documentada) |
| --- | --- |
| base | 0,77 |

O relatório dá os passos:

- no treino 10, 1 250 passos.
"""


def test_scanner_flags_typed_results_and_nothing_else(monkeypatch):
    monkeypatch.setitem(prose.ALLOWED, "ch", {"50": "épocas do enunciado"})
    found = [(number, sentence) for _, number, sentence in prose.typed_numbers("ch", SAMPLE)]
    # the typed results: in prose, beside a documented value, before a far label, in a solution
    assert [n for n, _ in found] == ["0,8431", "0,77", "5", "3", "0,91"], found


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_substitutions_in_prose_are_defined(chapter):
    """Each {{ name }} of the prose is a phrase the build writes (an undefined one would print nothing)."""
    used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", chapter_text(chapter)))
    missing = sorted(used - set(substitutions.substitutions(chapter)))
    assert not missing, f"book/{chapter}.md uses substitutions that livro/substitutions.py does not define: {missing}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_history_ends_with_the_committed_execution(chapter):
    """results/history.json is regenerated with each full execution (python scripts/history.py)."""
    results = book.read_results(chapter)
    recorded = history.read_history().get(chapter, [])
    assert recorded and recorded[-1]["date"] == results["provenance"]["date"], (
        f"results/history.json does not end with the execution in results/{chapter}.json "
        f"({results['provenance']['date']}); run: python scripts/history.py")
    keys = {q["key"] for _, q in book.quantities(book.read_spec(chapter)) if not q.get("deterministic")}
    expected = {k: v for k, v in results["values"].items() if k in keys and v is not None}
    assert json.loads(json.dumps(recorded[-1]["values"])) == json.loads(json.dumps(expected)), (
        f"results/history.json's last {chapter} entry differs from results/{chapter}.json; "
        f"run: python scripts/history.py")


def test_history_sentences():
    runs = {"ch": [
        {"date": "1", "code_sha256": "a", "values": {"acc": 0.5, "n": 2, "best": [4, 8]}},
        {"date": "2", "code_sha256": "a", "values": {"acc": 0.53, "n": 2, "best": [4, 16]}},
        {"date": "3", "code_sha256": "b", "values": {"acc": 0.6, "n": 2, "best": [4, 16]}},
    ]}
    assert history.sentence("ch", "acc", runs) == "de 0.5000 a 0.6000 (3 execuções)"
    assert history.sentence("ch", "n", runs) == "sempre igual (3 execuções)"
    assert history.sentence("ch", "best", runs) == "variou entre 2 resultados (3 execuções)"
    assert history.sentence("ch", "missing", runs) == "nenhuma execução anterior registrada"
    assert history.same_code_change("ch", "acc", runs) == pytest.approx(0.03)


def test_verdict_summary():
    row = lambda verdict: book.Row("ch", "ex1", "q", "q", 1, 1, "= 1", verdict)  # noqa: E731
    assert substitutions.summary([row("inside"), row("inside"), row("no-data")]) == (
        "todas as 2 grandezas conferidas ficaram dentro das faixas")
    assert substitutions.summary([row("inside"), row("deviation")]) == (
        "1 das 2 grandezas conferidas ficaram dentro das faixas e 1 fora delas, registradas como desvios")


def test_history_table_on_the_provenance_page(monkeypatch):
    runs = {"ch": [
        {"date": "1", "code_sha256": "a", "values": {"acc": 0.5, "best": [4, 8]}},
        {"date": "2", "code_sha256": "a", "values": {"acc": 0.53, "best": [4, 16]}},
        {"date": "3", "code_sha256": "b", "values": {"acc": 0.6}},
    ]}
    monkeypatch.setattr(history, "read_history", lambda: runs)
    rows = [line for line in history.section() if line.startswith("| ch |")]
    assert rows == ["| ch | `acc` | 3 | de 0.5000 a 0.6000 | 0.03 |",
                    "| ch | `best` | 2 | variou entre 2 resultados | — |"]


def test_an_execution_that_only_loaded_its_trainings_is_not_a_new_measurement():
    from conftest import load_script

    history_script = load_script("history")

    def version(date, acc, treinos):
        return {"provenance": {"profile": "full", "date": date, "code_sha256": "abc", "backend": "tensorflow"},
                "values": {"acc": acc}, "treinos": treinos}

    trained = {"t": {"loaded": False, "trained": "2026-12-01T10:00:00+00:00"}}
    reloaded = {"t": {"loaded": True, "trained": "2026-12-01T10:00:00+00:00"}}
    retrained = {"t": {"loaded": False, "trained": "2026-12-02T10:00:00+00:00"}}
    found = history_script.entries([version("2026-12-01T10:00:05+00:00", 0.5, trained),
                                    version("2026-12-01T11:00:00+00:00", 0.5, reloaded),
                                    version("2026-12-02T10:00:05+00:00", 0.6, retrained)], ["acc"])
    assert [e["date"] for e in found] == ["2026-12-01T11:00:00+00:00", "2026-12-02T10:00:05+00:00"]
    assert [e["values"]["acc"] for e in found] == [0.5, 0.6]
