"""The book's pipeline, in one file: chapters, staleness, answer checks, merge.

    book/<chapter>.md          the chapter source (MyST notebook, edited by people)
    executed/<chapter>.ipynb   its last full execution (papermill), committed
    results/<chapter>.json     recorded numbers + provenance of that execution
    answers/<chapter>.yml      answer key: options, documented values and ranges
    answers/deviations.yml     faithful results outside a documented range: why, value, tolerance

``scripts/execute.py`` writes the executed notebook and results;
``scripts/answers.py`` compares results with the answer key;
``scripts/build.py`` merges outputs into the current prose and builds the HTML.
"""
from __future__ import annotations

import datetime as dt

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
    """The chapter's results file; a truncated or corrupt one raises integrity.BookError (one sentence)."""
    from livro.integrity import read_json

    path = RESULTS / f"{chapter}.json"
    return read_json(path) if path.exists() else None


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
    from livro import cache

    trainings = cache.stale_trainings(chapter, results, RESULTS)
    if trainings:
        return f"{where} is stale: {trainings[0]}; run: make execute CHAPTER={chapter}"
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
    registered: object = None  # a deviation's registered value (answers/deviations.yml)
    tolerance: float | None = None  # how much further from the band it may move

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


def reader_seconds(results: dict) -> float | None:
    """How long the chapter's recorded full execution would take if every training ran in it,
    one after the other (what a reader running the notebook waits): the execution's wall time,
    minus what its ``livro.treino`` calls took there, plus each training's own seconds. An
    execution that did not record its calls' time (before ``call_seconds``) counts the trainings
    it loaded from an earlier execution; one trained by a helper lane meanwhile is then missed."""
    prov = results.get("provenance") or {}
    wall = prov.get("wall_seconds")
    if wall is None:
        return None
    used = (results.get("treinos") or {}).values()
    if all("call_seconds" in u for u in used):
        return wall - sum(u["call_seconds"] for u in used) + sum(u["seconds"] for u in used)
    start = dt.datetime.fromisoformat(prov["date"]) - dt.timedelta(seconds=wall)
    return wall + sum(u["seconds"] for u in used
                      if u.get("loaded") and dt.datetime.fromisoformat(u["trained"]) < start)


def read_spec(chapter: str) -> dict:
    """The chapter's answer key, validated (livro.answer_keys): BookError in one sentence otherwise."""
    from livro import answer_keys

    path = answers_file(f"{chapter}.yml")
    if not path.is_file():  # a reader's livro.spec("...") with a name the book does not have
        raise FileNotFoundError(f"Não há gabarito do capítulo {chapter!r}: {path} não existe.")
    return answer_keys.load(path, chapter)


# A deviation: a faithful result outside its documented band, registered with the value it
# had and how much further from the band a later execution may move before a test fails.
DEVIATION_SCHEMA = {
    "type": "object",
    "propertyNames": {"pattern": r"^\w+\.\w+$"},
    "additionalProperties": {
        "type": "object",
        "required": ["reason", "value", "tolerance"],
        "additionalProperties": False,
        "properties": {
            "reason": {"type": "string", "minLength": 20},
            "value": {"type": ["number", "string", "boolean", "array"]},
            "tolerance": {"type": "number", "minimum": 0},
        },
    },
}


class DeviationsError(ValueError):
    """answers/deviations.yml is not in the format DEVIATION_SCHEMA describes."""


def read_deviations(path: Path | None = None) -> dict:
    """``{"chapter.key": {"reason", "value", "tolerance"}}``, validated against DEVIATION_SCHEMA."""
    import jsonschema

    path = path or answers_file("deviations.yml")
    if not path.is_file():
        return {}
    from livro import answer_keys

    data, _ = answer_keys.load_yaml(path)  # malformed YAML, duplicate keys: one sentence
    data = data or {}
    errors = sorted(jsonschema.Draft202012Validator(DEVIATION_SCHEMA).iter_errors(data),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        where = "/".join(map(str, errors[0].absolute_path)) or "top level"
        raise DeviationsError(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
                              f"{where}: {errors[0].message} (each entry needs reason, value and tolerance)")
    return data


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


def distance(q: dict, value) -> float | None:
    """How far a numeric ``value`` lies from quantity ``q``'s band (0 inside); None if not numeric."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    if "range" in q:
        lo, hi = q["range"]
        return max(lo - value, value - hi, 0.0)
    expect = q["expect"]
    if isinstance(expect, bool) or not isinstance(expect, (int, float)):
        return None
    return abs(value - expect)


def same(a, b) -> bool:
    """Equal values; lists compare as sets (as the answer key's ``expect`` does)."""
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b))
    return a == b


def judge_deviation(q: dict, value, deviation: dict, dev_key: str) -> tuple[str, str]:
    """(verdict, note) for a value outside its band that answers/deviations.yml registers.

    A numeric value may move closer to the band, or at most ``tolerance`` further from it than
    the registered value; any other value (a letter, a set, a flag) must equal the registered one.
    """
    registered, tolerance = deviation["value"], deviation["tolerance"]
    now, then = distance(q, value), distance(q, registered)
    if now is None or then is None:
        if same(value, registered):
            return "deviation", deviation["reason"]
        return "outside", (f"the value changed from {registered}, registered in answers/deviations.yml, "
                           f"to {value}: examine the new result and register it again under {dev_key}")
    if now > then + tolerance:
        return "outside", (f"{value:.6g} lies {now:.4g} from the documented {expected_text(q)}, further than the "
                           f"registered {registered} ({then:.4g}) plus its tolerance {tolerance} "
                           f"(answers/deviations.yml, {dev_key})")
    return "deviation", deviation["reason"]


def check(chapter: str, results: dict | None = None, deviations: dict | None = None,
          spec: dict | None = None) -> list[Row]:
    """One row per checkable quantity of a chapter, from its recorded results (and, for an
    older edition's results, that edition's answer key `spec`)."""
    spec = read_spec(chapter) if spec is None else spec
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
        deviation = deviations.get(dev_key)
        if isinstance(deviation, str):  # an older edition's format (scripts/editions.py): a reason only
            deviation = {"reason": deviation, "value": value, "tolerance": 0}
        if key not in values:
            needs = q.get("needs_data")
            verdict = "no-data" if needs and needs in no_data else "missing"
            if verdict == "no-data":
                note = f"{needs} is not in the data directory"
            else:
                note = missing_note(chapter, key, values)
        elif holds(q, value):
            verdict = "inside"
            if deviation is not None:
                verdict = "outside"
                note = f"registered as a deviation in answers/deviations.yml but now inside: remove {dev_key}"
        elif deviation is not None:
            verdict, note = judge_deviation(q, value, deviation, dev_key)
        else:
            verdict = "outside"
        rows.append(
            Row(chapter, ex_name, key, q.get("label", key), value, q.get("documented"),
                expected_text(q), verdict, note,
                *((deviation["value"], deviation["tolerance"]) if deviation is not None else ()))
        )
    return rows


def missing_note(chapter: str, key: str, values: dict) -> str:
    """Why a quantity has no value: its key may be wrong (nearest recorded keys), or the run is old."""
    import difflib

    from livro.answer_keys import quantity_line

    line = quantity_line(ANSWERS / f"{chapter}.yml", key)
    near = difflib.get_close_matches(key, list(values), n=4, cutoff=0.5) or sorted(values)[:6]
    listed = ", ".join(near) + (" …" if len(values) > len(near) else "")
    return (f"results/{chapter}.json records no value named {key}; the key in answers/{chapter}.yml"
            f"{f' (line {line})' if line else ''} may be wrong (recorded keys: {listed or 'none'}), "
            f"otherwise re-execute the chapter")


def problem(row: Row) -> str:
    """One sentence for a row that should fail a test, naming what and where."""
    where = f"{row.chapter} {row.exercise} ({row.quantity})"
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
