"""The book's editions (edicoes.yml) and what changed between them.

    python scripts/editions.py      # prints the page "O que mudou entre edições" (MyST Markdown)

`edicoes.yml` lists the published editions, oldest first: a name, the commit the
edition is built from, its date and its release notes (in Portuguese). `make site`
builds every edition from its own commit (scripts/site.py); `scripts/build.py` adds
this page to the book. The page compares the results recorded at consecutive
editions' commits (results/, answers/): the regenerated values and the verdicts that
changed, and which chapters were re-executed. Nothing here executes a chapter.
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livro import book  # noqa: E402
from livro.answer_keys import verdict_text  # noqa: E402

EDITIONS_FILE = ROOT / "edicoes.yml"
FIELDS = ("name", "commit", "date", "notes")


@dataclass
class Edition:
    name: str
    commit: str  # None: the working tree (latest)
    date: str
    notes: str


def load(path: Path = EDITIONS_FILE) -> list[Edition]:
    """The editions of `path`, oldest first; a malformed entry is one clear error."""
    if not path.exists():
        return []
    entries = yaml.safe_load(path.read_text()) or []
    editions = []
    for i, entry in enumerate(entries, 1):
        missing = [f for f in FIELDS if not (isinstance(entry, dict) and entry.get(f))]
        if missing:
            raise SystemExit(f"{path.name}: edition {i} lacks {', '.join(missing)} (each needs {', '.join(FIELDS)}).")
        editions.append(Edition(str(entry["name"]), str(entry["commit"]), str(entry["date"]), entry["notes"].strip()))
    names = [e.name for e in editions]
    if len(set(names)) != len(names) or "latest" in names:
        raise SystemExit(f"{path.name}: edition names must be unique and not 'latest' (found {names}).")
    return editions


def read_at(commit: str | None, path: str) -> str | None:
    """A repository file as committed at `commit` (None: as it is now), or None if absent."""
    if commit is None:
        file = ROOT / path
        return file.read_text() if file.exists() else None
    proc = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def snapshot(commit: str | None) -> dict:
    """Per chapter at `commit`: its execution date, recorded values and verdicts."""
    toc = yaml.safe_load(read_at(commit, "_toc.yml") or "{}") or {}
    deviations = yaml.safe_load(read_at(commit, "answers/deviations.yml") or "{}") or {}
    chapters = {}
    for entry in toc.get("chapters", []):
        chapter = Path(entry["file"]).name
        results_text = read_at(commit, f"results/{chapter}.json")
        if results_text is None:
            continue
        results = json.loads(results_text)
        spec_text = read_at(commit, f"answers/{chapter}.yml")
        rows = book.check(chapter, results, deviations, spec=yaml.safe_load(spec_text)) if spec_text else []
        chapters[chapter] = {
            "date": results.get("provenance", {}).get("date"),
            "values": results.get("values", {}),
            "verdicts": {r.quantity: (r.exercise, r.label, r.verdict) for r in rows},
        }
    return chapters


def show(value) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif value is None:
        text = "—"
    else:
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)
    text = text.replace("|", "/")
    return text if len(text) <= 60 else text[:57] + "…"


def day(iso: str | None) -> str:
    return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M") if iso else "—"


def compare(old: Edition, new: Edition, before: dict, after: dict) -> list[str]:
    """The section of the page for two consecutive editions."""
    lines = [f"## `{old.name}` → `{new.name}`", ""]
    reexecuted = [ch for ch in after if before.get(ch, {}).get("date") != after[ch]["date"]]
    if reexecuted:
        lines += ["Capítulos reexecutados (data da execução registrada):", ""]
        lines += [f"- {ch}: {day(before.get(ch, {}).get('date'))} → {day(after[ch]['date'])}" for ch in reexecuted]
    else:
        lines += ["Nenhum capítulo foi reexecutado: os números são os mesmos."]
    lines.append("")
    verdicts, values = [], []
    for ch in after:
        old_ch, new_ch = before.get(ch, {"values": {}, "verdicts": {}}), after[ch]
        for key, (exercise, label, verdict) in new_ch["verdicts"].items():
            was = old_ch["verdicts"].get(key, ("", "", "—"))[2]
            if was != verdict:
                verdicts.append(f"| {ch} | {exercise} | {label} | {verdict_text(was)} "
                                f"| {verdict_text(verdict)} |")
        for key in sorted(set(old_ch["values"]) | set(new_ch["values"])):
            a, b = old_ch["values"].get(key), new_ch["values"].get(key)
            if a != b:
                values.append(f"| {ch} | `{key}` | {show(a)} | {show(b)} |")
    lines += [f"### Vereditos que mudaram ({len(verdicts)})", ""]
    if verdicts:
        lines += [f"| capítulo | exercício | quantidade | `{old.name}` | `{new.name}` |", "| --- | --- | --- | --- | --- |",
                  *verdicts]
    else:
        lines.append("Nenhum veredito mudou: cada quantidade conferida continua dentro da faixa, "
                     "como desvio registrado ou sem dados, como antes.")
    lines += ["", f"### Valores regenerados que mudaram ({len(values)})", ""]
    if values:
        lines += [f"| capítulo | valor registrado | `{old.name}` | `{new.name}` |", "| --- | --- | --- | --- |", *values]
    else:
        lines.append("Nenhum valor registrado mudou.")
    return lines + [""]


def changes_page(editions: list[Edition] | None = None) -> str:
    """The page "O que mudou entre edições", from the results recorded at each edition."""
    editions = load() if editions is None else editions
    lines = ["# O que mudou entre edições", "",
             "Gerada por `scripts/editions.py` a partir de `edicoes.yml` e dos resultados registrados "
             "(`results/`, `answers/`) no commit de cada edição. Um valor muda quando o capítulo foi "
             "reexecutado e o cálculo deu outro número; o veredito compara o valor com a faixa do gabarito "
             "daquela edição.", ""]
    if not editions:
        return "\n".join(lines + ["Nenhuma edição definida em `edicoes.yml`.", ""])
    lines += ["## Edições", "", "| edição | data | commit |", "| --- | --- | --- |"]
    lines += [f"| `{e.name}` | {e.date} | `{e.commit[:10]}` |" for e in reversed(editions)]
    lines.append("")
    for e in reversed(editions):
        lines += [f"**`{e.name}`** — {e.notes}", ""]
    latest = Edition("latest (main)", None, "", "")
    sequence = [*editions, latest]
    snapshots = []
    for e in sequence:
        if e.commit is not None and read_at(e.commit, "_toc.yml") is None:
            snapshots.append(None)  # commit absent from this clone (shallow?): said below
        else:
            snapshots.append(snapshot(e.commit))
    for (old, before), (new, after) in reversed(list(zip(zip(sequence, snapshots), zip(sequence[1:], snapshots[1:])))):
        if before is None or after is None:
            missing = old if before is None else new
            lines += [f"## `{old.name}` → `{new.name}`", "",
                      f"O commit `{missing.commit}` da edição `{missing.name}` não está neste clone "
                      "(um clone raso?): comparação indisponível.", ""]
            continue
        lines += compare(old, new, before, after)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(changes_page())
