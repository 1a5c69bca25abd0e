"""The notebooks a reader downloads or opens in Colab, generated from the executed chapters.

    python scripts/notebooks.py [CHAPTER ...] [--edition full|student] [--ref REF] [--out DIR]

Each one is the book page's own source (current prose + outputs of the last execution,
``livro.book.merged_notebook``), prepared to run alone, outside the repository:

1. a first code cell installs the book's package ``livro-redes-neurais`` from the
   repository at the edition of the page (``--ref``: the release tag or commit) when
   ``import livro`` fails, with TensorFlow when it is missing (Colab already has it);
2. a Markdown cell gives the chapter's measured run time per profile (from its
   provenance) and how to pick ``PROFILE``, naming the numbers a short profile does
   not reproduce;
3. papermill's injected ``PROFILE = "full"`` cell is removed: the chapter's own
   ``parameters`` cell is where the reader chooses;
4. the student edition also loses every solution (``{solution}`` blocks, the cells
   tagged ``hide-input`` that hold an assignment's solution code, with their outputs),
   the glued answer letters, output lines that state an answer and any ``resposta``
   column of a table; the executed outputs of the questions stay.

``scripts/build.py`` uses :func:`prepare` for the page sources, so the page, its
``_sources`` copy (the header's ``.ipynb`` download) and the "Baixar o notebook" link
are the same file of the same edition. The repository URL is read from ``_config.yml``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livro import book  # noqa: E402

DISTRIBUTION = "livro-redes-neurais"  # pyproject.toml's [project] name
# Colab opens notebooks from GitHub: the published site (scripts/site.py's folders) must
# also be pushed to this branch of the repository for the "Abrir no Colab" links to resolve.
PAGES_BRANCH = "gh-pages"
SHORT_PROFILE = "smoke"

# A statement of an answer: "Resposta: (b)", "Alternativa implicada pelos números: (d)",
# "a alternativa correta é (a)". The student edition removes the lines that hold one and
# tests/test_student_edition.py searches every built file for them.
ANSWER_STATEMENT = re.compile(
    r"(?:Resposta|Alternativa implicada[^:\n]{0,40})(?:\*\*)?\s*:\s*(?:\*\*)?\s*\(([a-e])\)"
    r"|alternativa correta é\s*(?:\*\*)?\(([a-e])\)",
    re.IGNORECASE,
)
FENCE = re.compile(r"^(`{3,}|:{3,})\s*\{(solution|solution-start|solution-end)\}")


def repository(conf: dict | None = None) -> tuple[str, str]:
    """(https URL, owner/name) of the book's repository: `repository.url` of _config.yml."""
    conf = conf or yaml.safe_load((ROOT / "_config.yml").read_text())
    url = conf["repository"]["url"].rstrip("/")
    return url, url.removeprefix("https://github.com/")


def current_ref() -> str:
    """The git ref of the edition being built: ``LIVRO_REF`` (scripts/site.py sets it to the
    release tag, or the commit, of each version it builds), else the working tree's commit."""
    if os.environ.get("LIVRO_REF"):
        return os.environ["LIVRO_REF"]
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "main"


# --- times ----------------------------------------------------------------------------


def run_times(chapter: str, smoke_dir: Path | None = None) -> dict[str, dict]:
    """The measured wall time of the chapter per profile: ``{"full": {...}, "smoke": {...}}``.

    ``full`` comes from ``results/<chapter>.json`` (the committed execution's provenance);
    ``smoke`` from the same file's ``smoke_provenance`` when it has one, else from the
    committed ``results/tempos_smoke.json`` (livro.smoke_times: a maintainer's
    ``make execute PROFILE=smoke`` records it), else from a smoke execution's results file
    in ``_build/smoke/`` (``smoke_dir``). A profile never measured is absent.
    """
    from livro import smoke_times

    committed = book.read_results(chapter) or {}
    smoke_file = (smoke_dir or ROOT / "_build" / "smoke") / f"{chapter}.json"
    recorded = smoke_times.read().get(chapter)
    candidates = [("full", committed.get("provenance", {})),
                  (SHORT_PROFILE, committed.get("smoke_provenance")
                   or ({**recorded, "profile": SHORT_PROFILE} if recorded else None)
                   or (json.loads(smoke_file.read_text()).get("provenance", {}) if smoke_file.is_file() else {}))]
    times = {}
    for profile, prov in candidates:
        if prov.get("profile") == profile and prov.get("wall_seconds") is not None:
            seconds = book.reader_seconds(committed) if profile == "full" else prov["wall_seconds"]
            times[profile] = {"seconds": seconds, "cpu": prov.get("cpu"),
                              "gpu": prov.get("gpu"), "cores": prov.get("cores_used"),
                              "date": (prov.get("date") or "")[:10]}
    return times


def duration(seconds: float) -> str:
    """Seconds as a reader reads a duration: "8 s", "3 min", "1 h 39 min"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def where(t: dict) -> str:
    device = t["gpu"] or t["cpu"] or "CPU"
    cores = f", {t['cores']} núcleo{'s' if t['cores'] != 1 else ''} usado{'s' if t['cores'] != 1 else ''}" \
        if t.get("cores") else ""
    return f"{device}{cores}, em {t['date']}"


def exercises(numbers: list[str]) -> str:
    """["7", "8", "10"] -> "dos Exercícios 7, 8 e 10"."""
    if len(numbers) == 1:
        return f"do Exercício {numbers[0]}"
    return f"dos Exercícios {', '.join(numbers[:-1])} e {numbers[-1]}"


def profile_cell_text(chapter: str, times: dict) -> str:
    """The Markdown cell before the `parameters` cell: run times and how to choose PROFILE."""
    spec = book.read_spec(chapter)
    trained, exact = [], []  # exercises whose checked numbers need training / are exact
    for ex, info in spec["exercises"].items():
        qs = info.get("quantities") or []
        if qs:
            (exact if all(q.get("deterministic") for q in qs) else trained).append(ex.removeprefix("ex"))
    full = times.get("full")
    short = times.get(SHORT_PROFILE)
    lines = [
        "## Antes de executar: escolha o perfil",
        "",
        "Este notebook já traz as saídas da execução publicada (perfil `full`). Para executá-lo você "
        "mesmo, escolha `PROFILE` na célula de parâmetros logo abaixo e execute tudo "
        "(*Run all*). Os dados vêm da pasta indicada por `LIVRO_DATA` ou, sem ela, dos downloads "
        "normais da Keras (é preciso internet).",
        "",
        "| perfil | o que faz | tempo medido |",
        "| --- | --- | --- |",
        f"| `\"full\"` | exatamente as configurações do curso | "
        + (f"{duration(full['seconds'])} ({where(full)}) |" if full else "ainda não executado |"),
        f"| `\"{SHORT_PROFILE}\"` | subconjuntos mínimos e poucas épocas: mostra o método em minutos | "
        + (f"{duration(short['seconds'])} ({where(short)}) |" if short
           else "não medido nesta edição |"),
        "",
    ]
    if trained:
        which = (f"os números {exercises(trained)}, que dependem de treino,"
                 if all(n.isdigit() for n in trained) else "os números que dependem de treino")
        lines.append(
            f"Com `\"{SHORT_PROFILE}\"`, {which} **não são comparáveis** com as faixas do gabarito "
            "nem com os valores documentados"
            + (f"; os {exercises(exact)} (cálculos exatos) valem nos dois perfis." if exact else ".")
        )
    elif exact:
        lines.append("Os números conferidos deste capítulo são cálculos exatos: valem nos dois perfis.")
    return "\n".join(lines)


# --- cells ------------------------------------------------------------------------------


def install_cell_source(repo_url: str, ref: str, backend: str = "tensorflow") -> str:
    """The first cell: install the book's package at this edition when it is not importable,
    with the Keras backend the chapter runs on when that is missing too, and select it."""
    target = f"git+{repo_url}@{ref}"
    return (
        "# Instala o pacote do livro (livro-redes-neurais) na edição deste notebook, se faltar.\n"
        "# Num clone do repositório ou num ambiente com `pip install -r requirements-reader.txt .`,\n"
        "# não instala nada.\n"
        "import importlib\n"
        "import importlib.util\n"
        "import os\n"
        "\n"
        f"os.environ[\"KERAS_BACKEND\"] = \"{backend}\"  # o backend com que o capítulo foi executado\n"
        "if importlib.util.find_spec(\"livro\") is None:\n"
        f"    extra = \"\" if importlib.util.find_spec(\"{backend}\") else \"[{backend}]\"\n"
        f"    %pip install --quiet \"{DISTRIBUTION}{{extra}} @ {target}\"\n"
        "    importlib.invalidate_caches()\n"
    )


def solution_free(text: str, gated: bool = False) -> tuple[str, bool]:
    """Markdown without its solutions: `{solution}` blocks, and everything from a gated
    `{solution-start}` block to its `{solution-end}` block. ``gated`` says whether the text
    starts inside a gated solution, and the returned flag whether it ends inside one (the
    cells in between belong to the solution)."""
    out, fence, after = [], None, None  # fence: closing fence of a block being skipped
    for line in text.splitlines(keepends=True):
        if fence is not None:
            if line.strip() == fence:
                fence, gated = None, after
            continue
        match = FENCE.match(line.strip())
        if match:
            fence = match.group(1)
            after = {"solution": gated, "solution-start": True, "solution-end": False}[match.group(2)]
            continue
        if not gated:
            out.append(line)
    return "".join(out), gated


def without_answer_column(text: str) -> str:
    """Markdown tables lose a column headed `resposta` (a table of the answer letters)."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        cells = [c.strip().lower() for c in lines[i].strip().strip("|").split("|")]
        if lines[i].lstrip().startswith("|") and "resposta" in cells:
            col = cells.index("resposta")
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                row = lines[j].strip().strip("|").split("|")
                if col < len(row):
                    del row[col]
                lines[j] = "|" + "|".join(row) + "|"
                j += 1
            i = j
        i += 1
    return "\n".join(lines)


def answer_keys(spec: dict) -> set[str]:
    """Glue keys whose value is an exercise's answer letter (and their `_md` forms)."""
    keys = set()
    for ex, q in book.quantities(spec):
        answer = spec["exercises"][ex].get("answer")
        if answer and q.get("expect", q.get("documented")) == answer:
            keys |= {q["key"], q["key"] + "_md"}
    return keys


def _strip_statements(value):
    if isinstance(value, list):
        value = "".join(value)
    return "".join(ln for ln in value.splitlines(keepends=True) if not ANSWER_STATEMENT.search(ln))


def student_outputs(outputs: list, hidden: set[str]) -> list:
    """A kept cell's outputs without glued answer letters and lines that state an answer."""
    kept = []
    for out in outputs:
        if out.get("metadata", {}).get("scrapbook", {}).get("name") in hidden:
            continue
        if out.get("output_type") == "stream":
            out.text = _strip_statements(out.text)
            if not out.text:
                continue
        elif "data" in out:
            for mime in list(out.data):
                if mime.startswith("text/") or mime.endswith("text/plain") or mime.endswith("text/markdown"):
                    out.data[mime] = _strip_statements(out.data[mime])
        kept.append(out)
    return kept


GLUE_REF = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)")
PLACEHOLDER = "# Sua solução aqui (a edição completa do livro traz uma resolução).\n"


def student(nb, chapter: str):
    """The notebook without solutions (see the module's docstring, point 4).

    A code cell of solution code becomes an empty cell for the student's own solution,
    hidden in the page, which keeps only the glued values that the remaining prose shows.
    """
    hidden = answer_keys(book.read_spec(chapter))
    cells, gated = [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source, gated = solution_free(cell.source, gated)
            cell.source = without_answer_column(cell.source)
            if cell.source.strip():
                cells.append(cell)
        elif cell.cell_type == "code":
            if gated:
                continue
            if "hide-input" in cell.metadata.get("tags", []):  # an assignment's solution code
                cell.source = PLACEHOLDER
                cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "hide-input"] + ["remove-cell"]
                cell.outputs = [o for o in cell.outputs if o.get("metadata", {}).get("scrapbook")]
            cell.outputs = student_outputs(cell.outputs, hidden)
            cells.append(cell)
        elif not gated:
            cells.append(cell)
    shown = {key for c in cells if c.cell_type == "markdown" for key in GLUE_REF.findall(c.source)}
    for cell in cells:
        if PLACEHOLDER == cell.get("source"):
            cell.outputs = [o for o in cell.outputs if o["metadata"]["scrapbook"]["name"] in shown]
    nb.cells = cells
    return nb


def prepare(nb, chapter: str, edition: str, repo_url: str, ref: str, times: dict):
    """Turn a merged chapter notebook into the one readers download (in place; returned)."""
    import nbformat

    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    if edition == "student":
        student(nb, chapter)
    backend = nb.metadata.get("livro", {}).get("keras_backend", "tensorflow")
    install = nbformat.v4.new_code_cell(install_cell_source(repo_url, ref, backend), id="instalar")
    install.metadata["tags"] = ["remove-cell"]  # the book page does not show it
    params = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    profile = nbformat.v4.new_markdown_cell(profile_cell_text(chapter, times), id="perfil")
    profile.metadata["tags"] = ["remove-cell"]
    if params is not None:
        nb.cells.insert(params, profile)
    nb.cells.insert(0, install)
    nb.metadata.setdefault("livro", {}).update({"chapter": chapter, "edition": edition, "ref": ref})
    return nb


def page_notebook(nb, chapter: str, edition: str, conf: dict):
    """What scripts/build.py makes of a merged chapter: the downloadable notebook."""
    url, _ = repository(conf)
    return prepare(nb, chapter, edition, url, current_ref(), run_times(chapter))


def site_folder(conf: dict) -> str:
    """Where this edition lives in the published site: `<version>/` or `<version>/aluno/`
    (the version switcher's `version_match`; `latest` for an unversioned build)."""
    sphinx = conf.get("sphinx", {}).get("config", {})
    match = sphinx.get("html_theme_options", {}).get("switcher", {}).get("version_match", "latest")
    version = match.removesuffix("-aluno")
    return f"{version}/aluno" if sphinx.get("hide_solutions") else version


def links_markdown(chapter: str, conf: dict) -> str:
    """"Baixar o notebook" (this page's _sources/ copy: the same edition and version) and
    "Abrir no Colab" (that file in the site's branch on GitHub)."""
    _, repo = repository(conf)
    path = f"{site_folder(conf)}/_sources/book/{chapter}.ipynb"
    return (f'<a href="../_sources/book/{chapter}.ipynb" download="{chapter}.ipynb">Baixar o notebook</a> · '
            f"[Abrir no Colab](https://colab.research.google.com/github/{repo}/blob/{PAGES_BRANCH}/{path})")


def without_answer_rows(chapter: str, rows: list) -> list:
    """Answer-report rows (livro.book.check) without those whose value is an answer letter."""
    hidden = answer_keys(book.read_spec(chapter))
    return [r for r in rows if r.quantity not in hidden]


def notebook(chapter: str, edition: str = "full", ref: str | None = None, conf: dict | None = None):
    """The downloadable notebook of one chapter and edition."""
    nb, _ = book.merged_notebook(chapter)
    url, _ = repository(conf)
    return prepare(nb, chapter, edition, url, ref or current_ref(), run_times(chapter))


def main(argv=None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="default: every executed chapter")
    parser.add_argument("--edition", choices=["full", "student"], default="full")
    parser.add_argument("--ref", help="git ref the install cell installs from (default: this commit)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "notebooks")
    args = parser.parse_args(argv)
    chapters = args.chapters or [c for c in book.chapters() if (book.EXECUTED / f"{c}.ipynb").exists()]
    folder = args.out / args.edition
    folder.mkdir(parents=True, exist_ok=True)
    for chapter in chapters:
        nbformat.write(notebook(chapter, args.edition, args.ref), folder / f"{chapter}.ipynb")
        print(folder / f"{chapter}.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
