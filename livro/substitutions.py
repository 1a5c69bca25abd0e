"""Sentences the build writes from recorded data: MyST substitutions for a chapter's prose.

``scripts/build.py`` puts ``substitutions(chapter)`` in each chapter's notebook metadata
(``myst: substitutions:``), so the prose can write ``{{ hist_ex7_v3_train_acc }}`` or
``{{ faixas }}`` instead of typing a result. A name the prose uses but this module does not
define fails the strict build (MyST warns about an undefined substitution).

* ``hist_<key>``: how the book's recorded full executions of a checked stochastic quantity
  varied (``livro.history``, from ``results/history.json``);
* ``faixa_<key>``: where the committed value of a checked quantity lies against its answer
  key (``livro.book.check``): "dentro da faixa", or "fora da faixa (desvio registrado)";
* ``faixas``: the same for the whole chapter, in one phrase.
"""
from __future__ import annotations

from livro import book, history

VERDICT = {
    "inside": "dentro da faixa",
    "deviation": "fora da faixa (desvio registrado no gabarito do livro)",
    "outside": "fora da faixa, sem desvio registrado",
    "no-data": "sem dados nesta execução",
    "missing": "não registrada nesta execução",
}


def summary(rows: list[book.Row]) -> str:
    """One phrase: how many checked quantities of a chapter lie inside their bands."""
    checked = [r for r in rows if r.verdict != "no-data"]
    inside = sum(r.verdict == "inside" for r in checked)
    deviations = sum(r.verdict == "deviation" for r in checked)
    if inside == len(checked):
        return f"todas as {len(checked)} grandezas conferidas ficaram dentro das faixas"
    text = f"{inside} das {len(checked)} grandezas conferidas ficaram dentro das faixas"
    if deviations:
        text += f" e {deviations} fora delas, registradas como desvios"
    return text


def substitutions(chapter: str) -> dict[str, str]:
    rows = book.check(chapter)
    found = {f"faixa_{r.quantity}": VERDICT[r.verdict] for r in rows}
    found["faixas"] = summary(rows)
    recorded = history.read_history()
    keys = {k for e in recorded.get(chapter, []) for k in e["values"]}
    found.update({f"hist_{k}": history.sentence(chapter, k, history=recorded) for k in sorted(keys)})
    return found
