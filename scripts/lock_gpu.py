"""Write requirements-gpu.txt: the book's environment with TensorFlow and JAX for CUDA 12.

    python scripts/lock_gpu.py     # needs PyPI; run with Python 3.11 on linux x86_64

The GPU runner of the *Execute chapters* workflow installs this file instead of
requirements.txt. It is requirements.txt with `tensorflow-cpu` replaced by
`tensorflow[and-cuda]` of the same version and `jax[cuda12]` at requirements.txt's jax
version, so that both Keras backends compute on the GPU, and every package they pull
(the `nvidia-*-cu12` CUDA wheels, the JAX CUDA plugin) pinned to the version pip
resolves (`pip install --dry-run --ignore-installed --report`).
"""
from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE, LOCK = ROOT / "requirements.txt", ROOT / "requirements-gpu.txt"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """{canonical name: version} of a file of `name==version` lines (comments skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            found[canonical(name.split("[")[0])] = version.strip()
    return found


def main() -> int:
    if (platform.system(), platform.machine(), sys.version_info[:2]) != ("Linux", "x86_64", (3, 11)):
        raise SystemExit("scripts/lock_gpu.py resolves for the GPU runner: run it with Python 3.11 on linux x86_64.")
    base = pins(BASE)
    tf_version, jax_version = base.pop("tensorflow-cpu"), base["jax"]
    with tempfile.TemporaryDirectory() as tmp:
        constraints, report = Path(tmp) / "base.txt", Path(tmp) / "report.json"
        constraints.write_text("".join(f"{name}=={version}\n" for name, version in base.items()))
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                        "--report", str(report), "-r", str(constraints),
                        f"tensorflow[and-cuda]=={tf_version}", f"jax[cuda12]=={jax_version}"], check=True)
        resolved = {canonical(item["metadata"]["name"]): item["metadata"]["version"]
                    for item in json.loads(report.read_text())["install"]}
    header = [
        "# The environment of the GPU runner (workflow *Execute chapters*): requirements.txt with",
        f"# tensorflow[and-cuda]=={tf_version} instead of tensorflow-cpu and jax[cuda12]=={jax_version}, and every",
        "# CUDA wheel they pull, as pip resolved them for Python 3.11 on linux x86_64.",
        "# Regenerate with: python scripts/lock_gpu.py (after changing requirements.txt).",
    ]
    LOCK.write_text("\n".join(header + [f"{name}=={version}" for name, version in sorted(resolved.items())]) + "\n")
    print(f"{LOCK.name}: {len(resolved)} packages, {sum(n.startswith('nvidia-') for n in resolved)} CUDA wheels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
