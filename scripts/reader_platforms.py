"""Can a reader's laptop install requirements-reader.txt? Ask PyPI, platform by platform.

    python scripts/reader_platforms.py [--requirements requirements-reader.txt]

For each platform below, pip resolves every pinned line of the reader requirements
against PyPI as that platform would (`pip install --dry-run --only-binary=:all:
--platform ... --python-version 3.11 --no-deps`; `--with-deps` resolves their
dependencies too, 149 distributions on 2026-12-01, about 3 minutes): only wheel metadata
travels, nothing is installed. Prints one line per platform and exits 1 when a platform the README promises
cannot install them. macOS on Intel is checked and reported, not promised: TensorFlow
stopped publishing wheels for it (2.16 was the last), so the README sends those readers
to Colab.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = "3.11"


def manylinux(arch: str) -> list[str]:
    """The wheel tags a Linux with glibc 2.28 (Debian 10, Ubuntu 20.04, RHEL 8 and newer) accepts."""
    return [f"manylinux_2_{minor}_{arch}" for minor in range(28, 16, -1)] + [f"manylinux2014_{arch}"]


# name -> (pip platform tags, promised by the README)
PLATFORMS = {
    "Linux x86-64": (manylinux("x86_64"), True),
    "Linux aarch64": (manylinux("aarch64"), True),
    "macOS arm64 (Apple Silicon)": (["macosx_14_0_arm64"], True),
    "Windows x86-64": (["win_amd64"], True),
    "macOS x86-64 (Intel)": (["macosx_14_0_x86_64"], False),
}


def check(tags: list[str], requirements: Path, cache: Path, deps: bool = False) -> tuple[bool, str]:
    """(resolves?, pip's last line) for one platform."""
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
               *([] if deps else ["--no-deps"]),
               "--only-binary=:all:", "--python-version", PYTHON, "--implementation", "cp",
               "--index-url", "https://pypi.org/simple", "--cache-dir", str(cache),
               "--target", str(cache / "target"), "--disable-pip-version-check", "-r", str(requirements)]
    for tag in tags:
        command += ["--platform", tag]
    # the reader's pip sees plain PyPI: no local mirror, constraints or find-links of this machine
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    env = {k: v for k, v in env.items() if not k.startswith("PIP_") or k == "PIP_CONFIG_FILE"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip() and "notice" not in ln]
    last = lines[-1] if lines else ""
    if proc.returncode == 0 and last.startswith("Would install"):
        last = f"{len(last.split()) - 2} distributions, all as wheels for this platform"
    return proc.returncode == 0, last


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements-reader.txt")
    parser.add_argument("--with-deps", action="store_true",
                        help="resolve every dependency too (about 150 distributions: minutes, not seconds)")
    args = parser.parse_args(argv)
    cache = Path(tempfile.gettempdir()) / "livro-pip-cache"
    with ThreadPoolExecutor(len(PLATFORMS)) as pool:  # network-bound: all platforms at once
        answers = pool.map(lambda tags: check(tags, args.requirements, cache, args.with_deps), [t for t, _ in PLATFORMS.values()])
    status = 0
    for (name, (_, promised)), (ok, last) in zip(PLATFORMS.items(), answers):
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {last}", flush=True)
        if promised and not ok:
            status = 1
    if status:
        print(f"{args.requirements.name} cannot be installed on every platform the README promises.")
    return status


if __name__ == "__main__":
    sys.exit(main())
