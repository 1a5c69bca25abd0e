"""Assemble the published site: every edition of edicoes.yml and `latest`, both editions.

    python scripts/site.py [--base-url /] [--out _build/site] [--tags NAME=REF ...]

    <out>/versions.json            the version switcher's list (pydata-sphinx-theme format)
    <out>/index.html               sends readers to the newest edition
    <out>/<version>/               the full book (answers hidden until opened)
    <out>/<version>/aluno/         the student edition (no answers in the HTML)

The versions are the editions of edicoes.yml (newest first), then `latest`, the
working tree (main); `--tags NAME=REF ...` builds those refs instead of the editions.
An edition is built from its own commit's executed chapters with that commit's
scripts/build.py: no data, no training. An edition that fails to build is reported
and left out (the others still publish); `latest` failing fails the site. The site
is static: serve <out> as is.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export(tag: str, ref: str) -> Path:
    """The tree of `ref`, as committed, in _build/versions/<tag>/ (build outputs kept)."""
    target = ROOT / "_build" / "versions" / tag
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    for child in target.glob("*"):
        if child.name != "_build":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def edition_ref(ref: str) -> str:
    """The commit a version's notebooks install the package from (an edition's commit, or
    HEAD's for `latest`), so that a page and its notebook agree."""
    return subprocess.run(["git", "rev-parse", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()


def build_version(tree: Path, version: str, base: str, out: Path, ref: str = "HEAD") -> str | None:
    """Build one version into `out`; None when it built, else why not (its output's last lines)."""
    command = [sys.executable, str(tree / "scripts" / "build.py"), "--edition", "both", "--strict",
               "--version", version, "--switcher", f"{base}versions.json", "--out", str(out)]
    print(f"[site] building {version} …", flush=True)
    env = {**os.environ, "LIVRO_REF": edition_ref(ref)}  # read by scripts/notebooks.py
    proc = subprocess.run(command, cwd=tree, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        return f"the build of {version} failed ({tree}):\n{tail}"
    return None


def edition_refs() -> dict[str, str]:
    """The editions of edicoes.yml as {name: commit}, newest first."""
    import editions

    return {e.name: e.commit for e in reversed(editions.load())}


def build_editions(refs: dict[str, str], base: str, out: Path) -> list[str]:
    """Build each edition from its commit; one that fails is reported and skipped.

    Returns the names that were built, in the order given."""
    built = []
    for name, ref in refs.items():
        try:
            tree = export(name, ref)
        except subprocess.CalledProcessError as error:
            why = f"its commit {ref} cannot be read here ({error.stderr.decode().strip() or error})"
        else:
            why = build_version(tree, name, base, out / name, ref)
        if why:
            shutil.rmtree(out / name, ignore_errors=True)
            print(f"[site] EDITION SKIPPED: {name}: {why}", flush=True)
        else:
            built.append(name)
    return built


def versions_json(versions: list[str], base: str) -> list[dict]:
    entries = []
    for i, version in enumerate(versions):
        label = f"{version} (main)" if version == "latest" else version
        entry = {"name": label, "version": version, "url": f"{base}{version}/"}
        if i == 0:
            entry["preferred"] = True
        entries.append(entry)
        entries.append({"name": f"{label} — edição do aluno", "version": f"{version}-aluno",
                        "url": f"{base}{version}/aluno/"})
    return entries


def index_html(versions: list[str], base: str) -> str:
    newest = versions[0]
    items = "\n".join(
        f'<li><a href="{base}{v}/">{v}</a> · <a href="{base}{v}/aluno/">edição do aluno</a></li>'
        for v in versions
    )
    return f"""<!DOCTYPE html>
<html lang="pt-BR"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0; url={base}{newest}/">
<title>Redes Neurais e Arquiteturas Profundas — o livro executável</title></head>
<body><p>Redirecionando para a versão mais recente: <a href="{base}{newest}/">{newest}</a>.</p>
<ul>{items}</ul></body></html>
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="/", help="where the site is served, e.g. /redes-neurais/")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "site")
    parser.add_argument("--tags", nargs="*",
                        help="versions to build instead of the editions of edicoes.yml; NAME=REF builds REF as NAME")
    args = parser.parse_args(argv)
    base = args.base_url if args.base_url.endswith("/") else args.base_url + "/"
    if args.tags is None:
        refs = edition_refs()
    else:
        refs = dict(t.split("=", 1) if "=" in t else (t, t) for t in args.tags)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    versions = build_editions(refs, base, args.out) + ["latest"]
    why = build_version(ROOT, "latest", base, args.out / "latest")
    if why:
        raise SystemExit(f"[site] {why}")
    (args.out / "versions.json").write_text(json.dumps(versions_json(versions, base), indent=1, ensure_ascii=False))
    (args.out / "index.html").write_text(index_html(versions, base))
    (args.out / ".nojekyll").write_text("")
    skipped = [name for name in refs if name not in versions]
    print(f"[site] {len(versions)} versions × 2 editions → {args.out}: {', '.join(versions)}"
          + (f"; skipped (see above): {', '.join(skipped)}" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
