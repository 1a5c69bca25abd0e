"""Can a reader's laptop install requirements-reader.txt? Ask PyPI, platform by platform.

    python scripts/reader_platforms.py [--requirements requirements-reader.txt] [--with-deps]

For each platform below and each pinned line `name==version`, PyPI's index (its JSON
form, PEP 691) lists the files of that release, and `packaging` (pip's own wheel-tag
logic) says whether one of its wheels installs on that platform with CPython 3.11 —
what `pip download --only-binary=:all: --platform ... --no-deps` decides, without
downloading gigabytes of wheels. `--with-deps` asks pip itself to resolve every
dependency too (`pip install --dry-run`; minutes: it downloads the wheels). Prints one
line per platform and exits 1 when a platform the README promises cannot install them.
macOS on Intel is checked and reported, not promised: TensorFlow stopped publishing
wheels for it (2.16 was the last), so the README sends those readers to Colab.
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


def macos(arch: str) -> list[str]:
    """The wheel tags macOS 14 (Sonoma) accepts: every older macOS version too, as pip expands them."""
    from packaging.tags import mac_platforms

    return list(mac_platforms((14, 0), arch))


# name -> (pip platform tags, promised by the README)
PLATFORMS = {
    "Linux x86-64": (manylinux("x86_64"), True),
    "Linux aarch64": (manylinux("aarch64"), True),
    "macOS arm64 (Apple Silicon)": (macos("arm64"), True),
    "Windows x86-64": (["win_amd64"], True),
    "macOS x86-64 (Intel)": (macos("x86_64"), False),
}


def pins(requirements: Path) -> list[tuple[str, str]]:
    return [tuple(ln.split("#")[0].strip().split("==")) for ln in requirements.read_text().splitlines()
            if "==" in ln.split("#")[0]]


def release_files(name: str, version: str) -> list[str]:
    """File names of one release on PyPI (the simple index, JSON form)."""
    import json
    import urllib.request

    from packaging.utils import canonicalize_name, parse_wheel_filename

    request = urllib.request.Request(f"https://pypi.org/simple/{canonicalize_name(name)}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = [f["filename"] for f in json.load(response)["files"] if not f.get("yanked")]
    return [f for f in files if f.endswith(".whl") and str(parse_wheel_filename(f)[1]) == version]


def check_tags(platforms: list[str], requirements: Path, files: dict) -> tuple[bool, str]:
    """(installable?, what is missing) for one platform, from the wheels' tags."""
    from packaging.tags import compatible_tags, cpython_tags
    from packaging.utils import parse_wheel_filename

    supported = set(cpython_tags((3, 11), platforms=platforms)) | set(
        compatible_tags((3, 11), "cp311", platforms=platforms))
    missing = [f"{name}=={version}" for name, version in pins(requirements)
               if not any(supported & set(parse_wheel_filename(f)[3]) for f in files[name, version])]
    if missing:
        return False, "no wheel for " + ", ".join(missing)
    return True, f"{len(files)} pinned distributions, all with a wheel for this platform"


def check(tags: list[str], requirements: Path, cache: Path, deps: bool = False) -> tuple[bool, str]:
    """(resolves?, pip's last line) for one platform: pip itself (--with-deps)."""
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
    if args.with_deps:
        with ThreadPoolExecutor(len(PLATFORMS)) as pool:  # network-bound: all platforms at once
            answers = list(pool.map(lambda tags: check(tags, args.requirements, cache, True),
                                    [t for t, _ in PLATFORMS.values()]))
    else:
        with ThreadPoolExecutor(8) as pool:
            wanted = pins(args.requirements)
            files = dict(zip(wanted, pool.map(lambda pin: release_files(*pin), wanted)))
        answers = [check_tags(tags, args.requirements, files) for tags, _ in PLATFORMS.values()]
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
