"""Build the HTML book from the committed executed chapters (trains nothing).

    python scripts/build.py [--strict]

1. copies _config.yml, _toc.yml and book/ into _build/src/;
2. replaces each chapter's MyST source by a notebook with its current prose and
   the outputs of its last execution (executed/<chapter>.ipynb);
3. runs `jupyter-book build` on it (nitpicky; --strict turns warnings into errors).
The HTML lands in _build/html. Stale chapters are named before building.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livro import book  # noqa: E402

SRC = ROOT / "_build" / "src"


def write_if_changed(path: Path, content: bytes, wanted: set) -> None:
    """Keep unchanged files untouched so that Sphinx rebuilds only what changed."""
    wanted.add(path)
    if path.exists() and path.read_bytes() == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def assemble() -> list[str]:
    import nbformat

    wanted: set[Path] = set()
    for name in ("_config.yml", "_toc.yml"):
        write_if_changed(SRC / name, (ROOT / name).read_bytes(), wanted)
    chapters = book.chapters()
    for path in book.BOOK.rglob("*"):
        if path.is_file() and path.parent.name != "__pycache__":
            if path.suffix == ".md" and path.stem in chapters and path.parent == book.BOOK:
                continue
            write_if_changed(SRC / "book" / path.relative_to(book.BOOK), path.read_bytes(), wanted)
    warnings = []
    for chapter in chapters:
        reason = book.staleness(chapter)
        if reason:
            warnings.append(reason)
        if not (book.EXECUTED / f"{chapter}.ipynb").exists():
            # never executed: the page shows the source without outputs
            source = book.BOOK / f"{chapter}.md"
            write_if_changed(SRC / "book" / source.name, source.read_bytes(), wanted)
            continue
        nb, merged = book.merged_notebook(chapter)
        write_if_changed(SRC / "book" / f"{chapter}.ipynb", nbformat.writes(nb).encode(), wanted)
    for path in SRC.rglob("*"):
        if path.is_file() and path not in wanted:
            path.unlink()
    return warnings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="Sphinx warnings are errors")
    args = parser.parse_args(argv)
    warnings = assemble()
    for reason in warnings:
        print(f"WARNING: {reason}")
    command = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(SRC), "--path-output", str(ROOT), "-n"]
    if args.strict:
        command += ["-W", "--keep-going"]
    status = subprocess.call(command)
    if status == 0:
        print(f"HTML in {ROOT / '_build' / 'html' / 'index.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
