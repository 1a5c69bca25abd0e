"""Build the HTML book from the committed executed chapters (trains nothing).

    python scripts/build.py [--strict] [--edition full|student] [--version NAME --switcher URL] [--out DIR]

1. copies _config.yml, _toc.yml and book/ into _build/src-<edition>/;
2. replaces each chapter's MyST source by a notebook with its current prose and
   the outputs of its last execution (executed/<chapter>.ipynb), prepared by
   scripts/notebooks.py as the notebook readers download (install cell, run times,
   PROFILE; Sphinx's _sources/ copy of it is the download), headed by links to it
   (download, Colab);
3. for the student edition, sets sphinx-exercise's `hide_solutions`, and that
   notebook has no solution, answer letter or solution code (scripts/notebooks.py),
   so the answers are in no file of the edition;
4. for a versioned site, adds the pydata-sphinx-theme version switcher;
5. runs `jupyter-book build` (nitpicky; --strict turns warnings into errors).
The full edition's HTML lands in _build/html, the student's in _build/student/html.
Unchanged files are not rewritten, so Sphinx rebuilds only what changed.

The publishing gate (`gate()`, alone with --check, i.e. `make check`; first with --strict, as
`make site` and the Publish workflow build): one sentence per stale chapter, executed notebook
or results file edited outside `make execute` (livro.integrity), and answer outside its
documented range without a registered deviation. --check and --strict fail on any of them
before building; a plain build (`make book`, for local reading) builds anyway and prints them
last, in a summary. Values read from results files are escaped in the generated pages.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livro import book, integrity  # noqa: E402
from livro import history  # noqa: E402
from livro.answer_keys import verdict_text  # noqa: E402  (the verdicts in the reader's words)
from livro.substitutions import substitutions  # noqa: E402

MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def md(value) -> str:
    """A value read from a results file as literal Markdown text: every ASCII punctuation
    character backslash-escaped (CommonMark), so `<script>`, `|` or `{role}` stay text."""
    return MARKDOWN_PUNCTUATION.sub(r"\\\1", str(value).replace("\n", " "))


def gate() -> list[str]:
    """One sentence per problem that must keep the book from being published."""
    found = []
    for chapter in book.chapters():
        try:
            found += integrity.problems(chapter)
            found += [book.problem(r) for r in book.check(chapter) if r.verdict in ("outside", "missing")]
        except integrity.BookError as error:
            found.append(str(error))
    return found


def summary(problems: list[str]) -> str:
    many = len(problems) > 1
    head = (f"{len(problems)} problem{'s' if many else ''} keep{'' if many else 's'} this book from being "
            "published (make check, make site refuse it):")
    return "\n".join([head, *(f"- {p}" for p in problems)])

import notebooks  # noqa: E402  (scripts/notebooks.py)


def write_if_changed(path: Path, content: bytes, wanted: set) -> None:
    wanted.add(path)
    if path.exists() and path.read_bytes() == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def config(edition: str, version: str | None, switcher: str | None) -> dict:
    conf = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx_conf = conf.setdefault("sphinx", {}).setdefault("config", {})
    theme = sphinx_conf.setdefault("html_theme_options", {})
    if edition == "student":
        conf["title"] += " — edição do aluno"
        sphinx_conf["hide_solutions"] = True
    conf.setdefault("parse", {}).setdefault("myst_substitutions", {}).update(intro_substitutions())
    if version and switcher:
        match = f"{version}-aluno" if edition == "student" else version
        theme["switcher"] = {"json_url": switcher, "version_match": match}
        theme["check_switcher"] = False  # versions.json lives beside the versions, not in the source
        theme["article_header_end"] = ["version-switcher", "article-header-buttons"]
    return conf


DATA_NAMES = {"cifar10.npz": "CIFAR-10", "cifar100.npz": "CIFAR-100", "fashion_mnist.npz": "Fashion-MNIST",
              "boston_housing.npz": "Boston Housing",
              "mobilenet_v2_1.0_224_no_top.h5": "pesos ImageNet da MobileNetV2"}


def duration_text(seconds: float) -> str:
    """6741 → '1 h 52 min'; 788 → '13 min'; 8 → 'menos de 1 min'."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "menos de 1 min"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def intro_substitutions() -> dict:
    """`{{ capitulos }}` for book/intro.md: each chapter, the data it read and its last full run
    time, from results/<chapter>.json (never typed)."""
    rows = ["| capítulo | dados | última execução completa |", "| --- | --- | --- |"]
    cpus = set()
    for chapter in book.chapters():
        results = book.read_results(chapter)
        prov = (results or {}).get("provenance", {})
        if not results or prov.get("profile") != "full":
            rows.append(f"| {{doc}}`{chapter}` | — | ainda não executado |")
            continue
        cpus.add(prov.get("gpu") or cpu_text(prov).replace(" (", " de ").rstrip(")"))  # "AMD EPYC de 2 núcleos"
        data = [DATA_NAMES.get(name, name) for name in results.get("data", {})]
        data += [f"{DATA_NAMES.get(name + '.npz', name)} (ausente: os treinos que a usam não rodaram)"
                 for name in results.get("no_data", {})]
        cores = prov.get("cores_used")
        where = "" if cores == 1 else f" ({cores} núcleos)"
        rows.append(f"| {{doc}}`{chapter}` | {', '.join(data) or 'nenhum'} | "
                    f"{duration_text(book.reader_seconds(results))}{where} |")
    note = (f"Tempos medidos na última execução completa de cada capítulo, num núcleo de uma CPU "
            f"{' ou '.join(sorted(cpus))}, sem GPU (página de proveniência). Um treino que essa execução "
            "aproveitou de uma execução anterior, sem refazê-lo, conta com o tempo que levou quando "
            "rodou.") if cpus else ""
    return {"capitulos": "\n".join(rows) + ("\n\n" + note if note else "")}


def notebook_links(chapter: str, conf: dict) -> str:
    """The links above a chapter: its downloadable notebook (this page's own source, as Sphinx
    copies it to _sources/, prepared by scripts/notebooks.py for this edition), the same
    notebook in Colab, and the provenance page."""
    return (
        f"```{{admonition}} Notebook executável\n:class: tip\n"
        f"{notebooks.links_markdown(chapter, conf)} · [proveniência da execução](proveniencia.md)\n```"
    )


def provenance_page(student: bool = False) -> str:
    """A page with each chapter's execution provenance and answer report."""
    lines = ["# Proveniência das execuções", "",
             "Gerada por `scripts/build.py` a partir de `results/<capítulo>.json` "
             "(gravados por `make execute`) e dos gabaritos em `answers/`.", ""]
    lines += regeneration_section()
    for chapter in book.chapters():
        results = book.read_results(chapter)
        lines += [f"## {chapter_title(chapter)}", ""]
        if results is None:
            lines += ["Ainda não executado.", ""]
            continue
        prov = results["provenance"]
        v = prov.get("versions", {})
        libs = ", ".join(f"{md(k)} {md(v[k])}" for k in ("python", "keras", "tensorflow-cpu", "tensorflow", "jax", "numpy") if k in v)
        slow = sorted(prov.get("cell_seconds", []), key=lambda c: -c["seconds"])[:3]
        slow_text = "; ".join(f"célula {md(c['cell'])}: {md(c['seconds'])} s" for c in slow)
        lines += [
            "| campo | valor |", "| --- | --- |",
            f"| data | {md(prov.get('date'))} |",
            f"| perfil | {md(prov.get('profile'))} |",
            f"| dispositivo | {md(prov.get('gpu') or 'CPU')}: {md(cpu_text(prov))} |",
            *device_rows(prov),
            f"| núcleos usados | {cores_text(prov)} |",
            f"| backend Keras | {md(prov.get('backend'))} |",
            f"| versões | {libs} |",
            f"| tempo total | {md(prov.get('wall_seconds'))} s |",
            f"| com todos os treinos rodando | {md(round(book.reader_seconds(results) or 0))} s (os treinos carregados do "
            "cache contam com o tempo de quando rodaram) |",
            f"| células mais lentas | {slow_text} |",
            f"| hash do código | `{re.sub('[^0-9a-f]', '', str(prov.get('code_sha256', '')))[:12]}` |",
            "",
        ]
        rows = book.check(chapter)
        if student:  # the student edition does not say which letter the numbers imply
            rows = notebooks.without_answer_rows(chapter, rows)
        if rows:
            lines += ["| exercício | quantidade | valor regenerado | documentado | faixa | veredito |",
                      "| --- | --- | --- | --- | --- | --- |"]
            for r in rows:
                expected = r.expected.replace("= True", "= sim").replace("= False", "= não")
                lines.append(f"| {md(r.exercise)} | {md(r.label)} | {md(value_text(r.value))} "
                             f"| {md(value_text(r.documented))} | {md(expected)} | {md(row_verdict_text(r))} |")
            lines.append("")
    return "\n".join(lines + history.section() + bench_section() + forced_regeneration_section()) + "\n"


def row_verdict_text(row: book.Row) -> str:
    """A row's verdict in the reader's words; a deviation also names the value it was
    registered with and its tolerance."""
    if row.verdict != "deviation":
        return verdict_text(row.verdict)
    return f"{verdict_text(row.verdict)} (registrado: {value_text(row.registered)}; tolerância: {row.tolerance})"


def device_rows(prov: dict) -> list[str]:
    """What each framework listed as its devices (`devices`, recorded since GPU executions)."""
    devices = prov.get("devices") or {}
    return [f"| dispositivos ({name}) | {', '.join(found) if isinstance(found, list) else found} |"
            for name, found in devices.items()]


def value_text(value) -> str:
    """A recorded or documented value as the provenance page shows it (True → sim)."""
    if isinstance(value, bool):
        return "sim" if value else "não"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def cpu_text(prov: dict) -> str:
    """'AMD EPYC (2 cores)' → 'AMD EPYC (2 núcleos)'."""
    return str(prov.get("cpu")).replace(" cores)", " núcleos)")


def chapter_title(chapter: str) -> str:
    """The chapter's '# ' title, as the table of contents shows it."""
    source = book.BOOK / f"{chapter}.md"
    titles = [line[2:].strip() for line in source.read_text().splitlines() if line.startswith("# ")]
    return titles[0] if titles else chapter


def interval(prov: dict) -> tuple[dt.datetime, dt.datetime]:
    """When an execution started and ended: `date` is its end, `wall_seconds` its length."""
    end = dt.datetime.fromisoformat(prov["date"])
    return end - dt.timedelta(seconds=prov["wall_seconds"]), end


def regeneration_span(provenances: list[dict]) -> tuple[float, float]:
    """The executions' total seconds and the seconds from the first start to the last end.

    When `make execute` ran every chapter at once, in lanes, the span is how long
    regenerating the book took."""
    starts, ends = zip(*map(interval, provenances))
    return sum(p["wall_seconds"] for p in provenances), (max(ends) - min(starts)).total_seconds()


def regeneration_section() -> list[str]:
    """When each committed full execution ran, for how long, and the book's total."""
    provs = [r["provenance"] for ch in book.chapters()
             if (r := book.read_results(ch)) and r["provenance"].get("profile") == "full"]
    if not provs:
        return []
    hours = lambda s: f"{round(s / 60) // 60} h {round(s / 60) % 60:02d} min ({s:.0f} s)"  # noqa: E731
    total, span = regeneration_span(provs)
    lines = ["## Última execução de cada capítulo", "",
             "| capítulo | início (UTC) | fim (UTC) | tempo | núcleos usados |", "| --- | --- | --- | --- | --- |"]
    for p in provs:
        start, end = (t.strftime("%Y-%m-%d %H:%M") for t in interval(p))
        lines.append(f"| {md(p['chapter'])} | {start} | {end} | {p['wall_seconds']:.0f} s "
                     f"| {md(p.get('cores_used', 'todos'))} |")
    return lines + ["", f"Soma dos tempos: {hours(total)}. Do primeiro início ao último fim: {hours(span)}. "
                    "Uma execução que carregou treinos do cache (`results/treinos/`) leva segundos; o tempo "
                    "de treinar tudo de novo está na seção «Regeneração com `FORCE=1`», abaixo.", ""]


def cores_text(prov: dict) -> str:
    """How many CPU cores the execution had: 1 in a lane of `make execute` (`--jobs`)."""
    cores = prov.get("cores_used")
    if cores is None:
        return "todos (execução anterior ao registro deste campo)"
    return "1 (numa das faixas de `make execute`, ao lado de outro capítulo)" if cores == 1 else md(cores)


def bench_section() -> list[str]:
    """The speed table written by `make bench` (results/bench.json), if there is one."""
    path = ROOT / "results" / "bench.json"
    if not path.exists():
        return []
    import bench  # the table is drawn from the measured rows, with each chapter's current backend

    b = json.loads(path.read_text())
    return ["## Velocidade de treino nesta máquina (`make bench`)", "",
            f"Medido em {md(b['date'])} num {md(cpu_text(b))}, com entradas sintéticas do formato certo (só o tempo "
            f"importa aqui). Pico prático, medido na mesma execução (produto de matrizes float32): "
            f"{md(b['peak_gflops'])} GFLOP/s. Imagens por segundo, fração do pico e estimativas são as do "
            "*backend* com que cada capítulo roda; as velocidades relativas comparam cada variante com o "
            "TensorFlow puro, na mesma execução.", "", bench.table(b), "",
            *[f"- {md(n)}" for n in b.get("notes", [])], ""]


def forced_regeneration_section() -> list[str]:
    """The forced regenerations (`make execute FORCE=1`, results/regeneracao.json) against the FLOP
    floor of `make bench` for the same chapters; when the runs together cover every chapter, the
    whole book's regeneration (their makespans added: the runs came one after the other)."""
    path = ROOT / "results" / "regeneracao.json"
    if not path.exists():
        return []
    import bench

    recorded = json.loads(path.read_text())
    runs = recorded["runs"] if "runs" in recorded else [recorded]
    bench_path = ROOT / "results" / "bench.json"
    floor = bench.floor_seconds(json.loads(bench_path.read_text())) if bench_path.exists() else None
    lines = ["## Regeneração com `FORCE=1`", ""]
    if len(runs) > 1:
        lines += [f"O livro foi regenerado em {md(len(runs))} execuções forçadas, uma depois da outra "
                  "(uma sessão de trabalho de 3 h não comporta o livro inteiro).", ""]
    for r in runs:
        lines += [f"Em {md(r['date'])}, num {md(r['cpu'])}, em {md(r['lanes'])} faixas de 1 núcleo: "
                  f"{md(round(r['makespan_s']))} s do primeiro início ao último fim; soma dos tempos das faixas "
                  f"dos capítulos {md(round(r['lane_seconds_sum']))} s; treinos executados somam "
                  f"{md(round(r['trainings_run_seconds_sum']))} s.", "",
                  "| capítulo | início (s) | duração (s) | treinos executados | treinos carregados |",
                  "| --- | --- | --- | --- | --- |"]
        for chapter, c in r["chapters"].items():
            lines.append(f"| {chapter} | {md(round(c['start_s']))} | {md(round(c['seconds']))} "
                         f"| {md(len(c['trainings_run_s']))} | {md(len(c['trainings_loaded']))} |")
        lines.append("")
        if floor is None:
            continue
        missing = [c for c, x in r["chapters"].items()
                   if c not in floor and (x["trainings_run_s"] or x["trainings_loaded"])]
        if missing:
            lines += ["Sem comparação com o piso de FLOPs: `make bench` ainda não mede as cargas de "
                      + ", ".join(md(c) for c in missing) + ".", ""]
        else:
            at_peak = sum(floor.get(c, 0.0) for c in r["chapters"])  # a chapter without trainings: 0
            lines += [f"Piso de FLOPs destes capítulos no pico medido por `make bench` (todos os núcleos): "
                      f"{md(round(at_peak))} s; esta execução levou {md(round(r['makespan_s'] / at_peak, 2))}× "
                      "o piso.", ""]
    covered = {c for r in runs for c in r["chapters"]}
    if floor is not None and len(runs) > 1 and set(floor) <= covered:
        makespan = sum(r["makespan_s"] for r in runs)
        trained = sum(r["trainings_run_seconds_sum"] for r in runs)
        at_peak = sum(floor.values())
        lines += [f"**O livro inteiro**: {md(round(makespan))} s de regeneração (soma dos tempos do primeiro "
                  f"início ao último fim de cada execução); treinos executados somam {md(round(trained))} s "
                  f"de um núcleo; o piso de FLOPs do livro no pico de `make bench` é {md(round(at_peak))} s: "
                  f"a regeneração levou {md(round(makespan / at_peak, 2))}× o piso. O piso conta só as "
                  "cargas que `make bench` mede (tabela acima).", ""]
    return lines


def editions_page() -> str:
    """The page "O que mudou entre edições" (scripts/editions.py, from edicoes.yml and git)."""
    import editions

    return editions.changes_page()


def hide_injected_parameters(nb) -> None:
    """papermill's "# Parameters" cell is bookkeeping: the page does not show it (the source's
    parameters cell is tagged remove-cell; both stay in the notebooks)."""
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]


def assemble(src: Path, conf: dict) -> list[str]:
    import nbformat

    wanted: set[Path] = set()
    write_if_changed(src / "_config.yml", yaml.safe_dump(conf, allow_unicode=True).encode(), wanted)
    write_if_changed(src / "_toc.yml", (ROOT / "_toc.yml").read_bytes(), wanted)
    chapters = book.chapters()
    for path in book.BOOK.rglob("*"):
        if path.is_file() and path.parent.name != "__pycache__":
            if path.suffix == ".md" and path.stem in chapters and path.parent == book.BOOK:
                continue
            write_if_changed(src / "book" / path.relative_to(book.BOOK), path.read_bytes(), wanted)
    student = conf["sphinx"]["config"].get("hide_solutions", False)
    write_if_changed(src / "book" / "proveniencia.md", provenance_page(student).encode(), wanted)
    write_if_changed(src / "book" / "edicoes.md", editions_page().encode(), wanted)
    warnings = []
    for chapter in chapters:
        reason = book.staleness(chapter)
        if reason:
            warnings.append(reason)
        if not (book.EXECUTED / f"{chapter}.ipynb").exists():
            # never executed: the page shows the source without outputs
            source = book.BOOK / f"{chapter}.md"
            write_if_changed(src / "book" / source.name, source.read_bytes(), wanted)
            continue
        nb, _ = book.merged_notebook(chapter)
        # sentences built from recorded data ({{ faixas }}, {{ hist_<key> }}): livro/substitutions.py
        nb.metadata.setdefault("myst", {}).setdefault("substitutions", {}).update(substitutions(chapter))
        hide_injected_parameters(nb)
        # the page's source is the notebook readers download (its _sources/ copy): install
        # cell, run times and PROFILE, and for the student edition no solution at all
        nb = notebooks.page_notebook(nb, chapter, "student" if student else "full", conf)
        title = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
        nb.cells.insert(title + 1, nbformat.v4.new_markdown_cell(notebook_links(chapter, conf), id="links"))
        write_if_changed(src / "book" / f"{chapter}.ipynb", nbformat.writes(nb).encode(), wanted)
    for path in src.rglob("*"):
        if path.is_file() and path not in wanted:
            path.unlink()
    return warnings


def build(edition: str = "full", strict: bool = False, version: str | None = None,
          switcher: str | None = None, out: Path | None = None) -> int:
    src = ROOT / "_build" / f"src-{edition}"
    work = ROOT if edition == "full" else ROOT / "_build" / edition
    assemble(src, config(edition, version, switcher))  # problems: see gate(), reported by main
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(src),
               "--path-output", str(work), "-n"]
    if strict:
        command += ["-W", "--keep-going"]
    status = subprocess.call(command)
    html = work / "_build" / "html"
    if status == 0 and out is not None:
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(html, out)
        html = out
    if status == 0:
        print(f"{edition} edition: {html / 'index.html'}")
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true",
                        help="refuse to build when the gate finds a problem; Sphinx warnings are errors")
    parser.add_argument("--check", action="store_true",
                        help="only the publishing gate (make check): one sentence per problem, builds nothing")
    parser.add_argument("--edition", choices=["full", "student", "both"], default="full")
    parser.add_argument("--version", help="version name shown by the switcher (e.g. v2026.1, latest)")
    parser.add_argument("--switcher", help="URL of versions.json (relative URLs: from the version's root)")
    parser.add_argument("--out", type=Path, help="copy the HTML here (with --edition both: OUT and OUT/aluno)")
    args = parser.parse_args(argv)
    try:
        problems = gate()
    except integrity.BookError as error:  # e.g. malformed answers/deviations.yml
        print(error)
        return 2
    if args.check or (args.strict and problems):
        for sentence in problems:
            print(f"ERROR: {sentence}")
        print(f"{len(problems)} problem(s): the book cannot be published until they are fixed." if problems
              else f"make check: all {len(book.chapters())} chapters can be published.")
        return 1 if problems else 0
    editions = ["full", "student"] if args.edition == "both" else [args.edition]
    status = 0
    for edition in editions:
        out = args.out
        if out is not None and args.edition == "both" and edition == "student":
            out = args.out / "aluno"
        try:
            status = max(status, build(edition, args.strict, args.version, args.switcher, out))
        except integrity.BookError as error:
            print(error)
            status = 2
    if problems:  # the last thing printed, after Sphinx's log
        print("\nWARNING: " + summary(problems))
    return status


if __name__ == "__main__":
    sys.exit(main())
