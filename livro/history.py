"""What the book's own earlier full executions gave for each checked stochastic quantity.

    results/history.json   written by ``scripts/history.py`` from the git history of results/

An entry per chapter lists its recorded full executions (one per provenance date, oldest
first) with the value of every answer-key quantity that is not ``deterministic``. The
chapters' prose shows the spread through MyST substitutions (``{{ hist_<key> }}``, see
``livro/substitutions.py``) that ``scripts/build.py`` fills from this file, so no earlier
value is ever typed.
"""
from __future__ import annotations

import json

from livro import book

HISTORY = book.RESULTS / "history.json"


def read_history() -> dict:
    return json.loads(HISTORY.read_text()) if HISTORY.exists() else {}


def values(chapter: str, key: str, history: dict | None = None) -> list[tuple[dict, object]]:
    """(execution, value) for each recorded execution of ``chapter`` that recorded ``key``."""
    history = read_history() if history is None else history
    return [(e, e["values"][key]) for e in history.get(chapter, []) if e["values"].get(key) is not None]


def same_code_change(chapter: str, key: str, history: dict | None = None) -> float:
    """The largest change of a numeric quantity between two executions of the same chapter code."""
    by_code: dict[str, list[float]] = {}
    for execution, value in values(chapter, key, history):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            by_code.setdefault(execution["code_sha256"], []).append(value)
    return max((max(v) - min(v) for v in by_code.values()), default=0.0)


def number(value: float, digits: int) -> str:
    """A value as the glued values beside it are written (decimal point)."""
    return f"{value:.{digits}f}"


def digits_for(values: list) -> int:
    """Decimals the chapters use: none for counts, 2 for percentages, 4 for fractions."""
    if all(isinstance(v, int) for v in values):
        return 0
    return 2 if max(abs(v) for v in values) >= 2 else 4


def spread(found: list[tuple[dict, object]]) -> str:
    """How the recorded values varied: "de 0.8306 a 0.8442", "sempre igual", "variou entre 2 resultados"."""
    numeric = [v for _, v in found if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numeric and len(numeric) == len(found):
        lo, hi, digits = min(numeric), max(numeric), digits_for(numeric)
        return "sempre igual" if lo == hi else f"de {number(lo, digits)} a {number(hi, digits)}"
    distinct = {json.dumps(v, sort_keys=True) for _, v in found}
    return "sempre igual" if len(distinct) == 1 else f"variou entre {len(distinct)} resultados"


def sentence(chapter: str, key: str, history: dict | None = None) -> str:
    """One Portuguese phrase: how the book's recorded executions of ``key`` varied."""
    found = values(chapter, key, history)
    if len(found) < 2:
        return "nenhuma execução anterior registrada"
    return f"{spread(found)} ({len(found)} execuções)"


def section() -> list[str]:
    """The provenance page's table: each checked stochastic quantity across the recorded executions."""
    recorded = read_history()
    lines = ["## Variação entre execuções", "",
             "Cada grandeza conferida que vem de um treino estocástico, nas execuções completas do "
             "livro guardadas no repositório (`results/history.json`, gerado por "
             "`scripts/history.py` a partir do histórico de `results/`). A última coluna é a maior "
             "mudança entre duas execuções do mesmo código do capítulo.", "",
             "| capítulo | grandeza | execuções | variação | maior mudança com o mesmo código |",
             "| --- | --- | --- | --- | --- |"]
    for chapter, runs in recorded.items():
        keys = sorted({k for run in runs for k in run["values"]}, key=lambda k: (k.split("_")[0], k))
        for key in keys:
            found = values(chapter, key, recorded)
            if len(found) < 2:
                continue
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for _, v in found)
            change = same_code_change(chapter, key, recorded)
            change_text = f"{change:.3g}" if numeric else "—"
            lines.append(f"| {chapter} | `{key}` | {len(found)} | {spread(found)} | {change_text} |")
    return lines + [""]
