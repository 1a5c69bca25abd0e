"""The book's pipeline, in one file: chapters, staleness, answer checks, merge.

    book/<chapter>.md          the chapter source (MyST notebook, edited by people)
    executed/<chapter>.ipynb   its last full execution (papermill), committed
    results/<chapter>.json     recorded numbers + provenance of that execution
    answers/<chapter>.yml      answer key: options, documented values and ranges
    answers/deviations.yml     faithful results that fall outside a documented range

``scripts/execute.py`` writes the executed notebook and results;
``scripts/answers.py`` compares results with the answer key;
``scripts/build.py`` merges outputs into the current prose and builds the HTML.
"""
from __future__ import annotations

import ast
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
EXECUTED = ROOT / "executed"
RESULTS = ROOT / "results"
ANSWERS = ROOT / "answers"


def chapters() -> list[str]:
    """Chapter names (files of ``book/`` that are notebooks), in table-of-contents order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = []
    for entry in toc.get("chapters", []):
        path = BOOK / (Path(entry["file"]).name + ".md")
        if path.exists() and path.read_text().startswith("---\njupytext:"):
            names.append(path.stem)
    return names


def read_source(chapter: str):
    """The chapter as a notebook object (jupytext reads the MyST Markdown)."""
    import jupytext

    return jupytext.read(BOOK / f"{chapter}.md")


def code_cells(nb) -> list:
    return [
        c
        for c in nb.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
    ]


# Tags that change what an execution does (papermill's parameters, nbclient's error and
# skip tags). Every other tag (hide-input, remove-cell, ...) only changes how the page shows
# a cell, so adding one must not make a chapter stale.
EXECUTION_TAGS = {"parameters", "raises-exception", "skip-execution"}


def code_hash(nb) -> str:
    """Hash of what an execution depends on: code cells and their execution tags, in order."""
    parts = [(c.source, sorted(EXECUTION_TAGS & set(c.metadata.get("tags", []))))
             for c in code_cells(nb)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def read_results(chapter: str) -> dict | None:
    path = RESULTS / f"{chapter}.json"
    return json.loads(path.read_text()) if path.exists() else None


def staleness(chapter: str) -> str | None:
    """None when the committed execution matches the source; otherwise why not."""
    results = read_results(chapter)
    where = f"book/{chapter}.md"
    if results is None or not (EXECUTED / f"{chapter}.ipynb").exists():
        return f"{where} has never been executed (run: make execute CHAPTER={chapter})"
    prov = results.get("provenance", {})
    if prov.get("profile") != "full":
        return f"{where} was last executed with PROFILE={prov.get('profile')}, not full"
    if prov.get("code_sha256") != code_hash(read_source(chapter)):
        return (
            f"{where} is stale: its code changed after its last execution "
            f"({prov.get('date')}); run: make execute CHAPTER={chapter}"
        )
    return None


# --- answer checks ---------------------------------------------------------------


@dataclass
class Row:
    chapter: str
    exercise: str
    quantity: str
    label: str
    value: object
    documented: object
    expected: str
    verdict: str  # inside | deviation | outside | no-data | missing
    note: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def answers_file(name: str):
    """``answers/<name>``: the copy installed with the package (package data ``livro.answers``,
    see pyproject.toml) or, when ``livro`` is imported from a clone, the repository's file."""
    from importlib import resources

    try:
        return resources.files("livro.answers") / name
    except ModuleNotFoundError:  # a clone: livro/ has no answers/ inside it
        return ANSWERS / name


def read_spec(chapter: str) -> dict:
    path = answers_file(f"{chapter}.yml")
    if not path.is_file():
        raise FileNotFoundError(f"Não há gabarito do capítulo {chapter!r}: {path} não existe.")
    return yaml.safe_load(path.read_text())


def read_deviations() -> dict:
    path = answers_file("deviations.yml")
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def quantities(spec: dict):
    """(exercise, quantity) pairs of an answer key, in order."""
    for ex_name, ex in spec["exercises"].items():
        for q in ex.get("quantities", []) or []:
            yield ex_name, q


def expected_text(q: dict) -> str:
    if "range" in q:
        lo, hi = q["range"]
        return f"[{lo}, {hi}]"
    return f"= {q['expect']}"


def holds(q: dict, value) -> bool:
    """Is ``value`` what the answer key documents for quantity ``q``?"""
    if "range" in q:
        lo, hi = q["range"]
        return isinstance(value, (int, float)) and not math.isnan(value) and lo <= value <= hi
    expect = q["expect"]
    if isinstance(expect, list) and isinstance(value, list):
        return sorted(map(str, expect)) == sorted(map(str, value))
    return value == expect


def check(chapter: str, results: dict | None = None, deviations: dict | None = None) -> list[Row]:
    """One row per checkable quantity of a chapter, from its recorded results."""
    spec = read_spec(chapter)
    if results is None:
        results = read_results(chapter) or {}
    if deviations is None:
        deviations = read_deviations()
    values = results.get("values", {})
    no_data = set(results.get("no_data", {}))
    rows = []
    for ex_name, q in quantities(spec):
        key = q["key"]
        dev_key = f"{chapter}.{key}"
        value = values.get(key)
        note = ""
        if key not in values:
            needs = q.get("needs_data")
            verdict = "no-data" if needs and needs in no_data else "missing"
            if verdict == "no-data":
                note = f"{needs} is not in the data directory"
        elif holds(q, value):
            verdict = "inside"
            if dev_key in deviations:
                verdict = "outside"
                note = f"registered as a deviation in answers/deviations.yml but now inside: remove {dev_key}"
        elif dev_key in deviations:
            verdict = "deviation"
            note = deviations[dev_key]
        else:
            verdict = "outside"
        rows.append(
            Row(chapter, ex_name, key, q.get("label", key), value, q.get("documented"),
                expected_text(q), verdict, note)
        )
    return rows


def problem(row: Row) -> str:
    """One sentence for a row that should fail a test, naming what and where."""
    where = f"{row.chapter} {row.exercise} ({row.quantity})"
    if row.verdict == "missing":
        return f"{where}: no value recorded in results/{row.chapter}.json; re-execute the chapter."
    if row.note:
        return f"{where}: {row.note}."
    return (
        f"{where}: regenerated value {row.value} is outside the documented {row.expected} "
        f"(documented {row.documented}) and is not registered in answers/deviations.yml."
    )


# --- merge: current prose + committed outputs ------------------------------------


def _record_echo(cell, output) -> bool:
    """Is ``output`` Jupyter's echo of a ``livro.record(...)`` that ends the cell?

    ``record`` returns the value it glues, so a cell ending with it also prints the bare
    value; the prose shows that value through glue, and the echo is dropped from the book.
    """
    if output.get("output_type") != "execute_result":
        return False
    try:
        body = ast.parse(cell.source).body
    except SyntaxError:  # IPython magics: not a plain record cell
        return False
    last = body[-1] if body else None
    return (
        isinstance(last, ast.Expr)
        and isinstance(last.value, ast.Call)
        and ast.unparse(last.value.func) == "livro.record"
    )


def merged_notebook(chapter: str):
    """The chapter's current source with the outputs of its last execution.

    Prose edits need no re-execution; if the code changed, the chapter is stale
    and the executed notebook is used as it is (old prose), with a warning.
    """
    import nbformat

    executed = nbformat.read(EXECUTED / f"{chapter}.ipynb", as_version=4)
    source = read_source(chapter)
    src_cells, exe_cells = code_cells(source), code_cells(executed)
    if [c.source for c in src_cells] != [c.source for c in exe_cells]:
        return executed, False
    for src, exe in zip(src_cells, exe_cells):
        src.outputs = [o for o in exe.outputs if not _record_echo(src, o)]
        src.execution_count = exe.execution_count
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    if injected:
        at = next(
            (i for i, c in enumerate(source.cells) if "parameters" in c.metadata.get("tags", [])),
            None,
        )
        if at is not None:
            source.cells.insert(at + 1, injected[0])
    for index, cell in enumerate(source.cells):
        cell.id = f"c{index}"  # stable ids: an unchanged chapter gives identical bytes
    source.metadata["kernelspec"] = executed.metadata.get("kernelspec", {})
    source.metadata["language_info"] = executed.metadata.get("language_info", {})
    source.metadata.pop("jupytext", None)
    return source, True
