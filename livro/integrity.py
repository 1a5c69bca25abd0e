"""The executed notebook and its results file are one sealed pair, checked before publishing.

``scripts/execute.py`` writes ``executed/<chapter>.ipynb`` and ``results/<chapter>.json``
together and stores in the results file a seal over both::

    "seal": {"notebook_sha256": ..., "results_sha256": ...}

``notebook_sha256`` hashes every cell's type, source and outputs of the executed notebook;
``results_sha256`` hashes the results file without its seal. An edit made outside
``make execute`` (a printed output, a glued number, a code hash typed by hand) or a
notebook and a results file from two different runs no longer match the seal.

``problems(chapter)`` checks a committed pair and returns one sentence per problem:

- every code cell of the executed notebook equals the chapter's (``book/<chapter>.md``);
- every glued value that is also a recorded value shows exactly the recorded value;
- both files still match the seal.

The seal detects careless or hurried edits, not a forger who recomputes it: anyone who
can commit can also re-run ``make execute``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from livro import book


class BookError(Exception):
    """A problem with the book's files, told in one sentence naming the file."""


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def notebook_digest(nb) -> str:
    """Hash of what the book shows from an executed notebook: each cell's type, source and outputs."""
    return _digest([[c.cell_type, c.source, c.get("outputs", [])] for c in nb.cells])


def results_digest(results: dict) -> str:
    return _digest({k: v for k, v in results.items() if k != "seal"})


def seal(nb, results: dict) -> dict:
    return {"notebook_sha256": notebook_digest(nb), "results_sha256": results_digest(results)}


def read_json(path: Path) -> dict:
    """A results file, or BookError in one sentence when it is not valid JSON (a truncated write)."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise BookError(
            f"{_rel(path)} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
            f"restore it with git checkout {_rel(path)} or re-execute the chapter") from None
    if not isinstance(data, dict):
        raise BookError(f"{_rel(path)} does not hold a JSON object; restore it with git checkout {_rel(path)}")
    return data


def read_notebook(path: Path):
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises JSON, validation and version errors alike
        raise BookError(f"{_rel(path)} is not a readable notebook ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else ''}); "
                        f"restore it with git checkout {_rel(path)} or re-execute the chapter") from None


def _rel(path: Path) -> str:
    for root in (book.ROOT, book.EXECUTED.parent):
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            pass
    return str(path)


def glued_values(nb) -> dict:
    """name -> the text/plain a glue output of the notebook shows (myst-nb's scrapbook outputs)."""
    glued = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            scrap = out.get("metadata", {}).get("scrapbook")
            if scrap and "name" in scrap:
                text = out.get("data", {}).get(scrap.get("mime_prefix", "") + "text/plain")
                glued[scrap["name"]] = text
    return glued


def shown(value) -> str:
    """How `livro.record` glues a recorded value: a string as itself, anything else by repr."""
    return value if isinstance(value, str) else repr(value)


def code_mismatch(source, executed) -> str | None:
    """Where the executed notebook's code cells differ from the source's, or None."""
    src, exe = [c.source for c in book.code_cells(source)], [c.source for c in book.code_cells(executed)]
    for index, (a, b) in enumerate(zip(src, exe), start=1):
        if a != b:
            first = next((ln.strip() for ln in a.splitlines() if ln.strip()), "")[:60]
            return f"code cell {index} differs (the source's starts `{first}`)"
    if len(src) != len(exe):
        return f"the source has {len(src)} code cells, the executed notebook {len(exe)}"
    return None


def pair_problems(chapter: str, source, executed, results: dict, nb_name: str, res_name: str) -> list[str]:
    """The sentences for one executed notebook + results pair (see the module docstring)."""
    rerun = f"run: make execute CHAPTER={chapter}"
    found = []
    where = code_mismatch(source, executed)
    if where:
        found.append(f"{nb_name} does not hold the code of book/{chapter}.md ({where}): the chapter is stale "
                     f"or the notebook was edited by hand; {rerun}")
    values = results.get("values", {})
    for name, text in glued_values(executed).items():
        if name in values and text != shown(values[name]):
            found.append(f"{nb_name} shows {name} = {text} but {res_name} recorded {shown(values[name])}: "
                         f"the notebook was edited by hand; {rerun}")
    stamp = results.get("seal")
    if not isinstance(stamp, dict):
        found.append(f"{res_name} has no seal, so it was not written by make execute; {rerun}")
        return found
    if stamp.get("results_sha256") != results_digest(results):
        found.append(f"{res_name} was edited after its execution (it no longer matches its seal); "
                     f"restore it with git checkout {res_name} or {rerun}")
    if stamp.get("notebook_sha256") != notebook_digest(executed):
        found.append(f"{nb_name} was edited after its execution, or comes from another run than {res_name} "
                     f"(it no longer matches the seal); restore it with git checkout {nb_name} or {rerun}")
    return found


def problems(chapter: str) -> list[str]:
    """One sentence per problem of a chapter's committed execution; [] when it can be published."""
    nb_path, res_path = book.EXECUTED / f"{chapter}.ipynb", book.RESULTS / f"{chapter}.json"
    try:
        stale = book.staleness(chapter)
        if stale:
            return [stale]
        executed, results = read_notebook(nb_path), read_json(res_path)
    except BookError as error:
        return [str(error)]
    return pair_problems(chapter, book.read_source(chapter), executed, results, _rel(nb_path), _rel(res_path))


def reseal(chapter: str) -> str:
    """For a one-off migration that must change a committed results file without re-executing
    (never to hide an edit): check the pair as `problems` does, except the seal, then store a
    new seal. Returns what was verified; BookError if the pair does not hold together."""
    nb_path, res_path = book.EXECUTED / f"{chapter}.ipynb", book.RESULTS / f"{chapter}.json"
    stale = book.staleness(chapter)
    if stale:
        raise BookError(stale)
    executed, results, source = read_notebook(nb_path), read_json(res_path), book.read_source(chapter)
    results.pop("seal", None)
    broken = pair_problems(chapter, source, executed, {**results, "seal": seal(executed, results)},
                           _rel(nb_path), _rel(res_path))
    if broken:
        raise BookError(broken[0])
    results["seal"] = seal(executed, results)
    res_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    glued = glued_values(executed)
    compared = sum(name in results.get("values", {}) for name in glued)
    return (f"{chapter}: {len(book.code_cells(source))} code cells equal the source's, {compared} glued values "
            f"equal the recorded ones; sealed")


if __name__ == "__main__":  # python -m livro.integrity --reseal CHAPTER ...
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "--reseal":
        sys.exit("usage: python -m livro.integrity --reseal CHAPTER ... (migrations only: see CONTRIBUTING.md)")
    try:
        for name in sys.argv[2:]:
            print(reseal(name))
    except BookError as error:
        sys.exit(str(error))
