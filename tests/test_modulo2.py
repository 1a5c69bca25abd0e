"""Módulo II: the CIFAR-100 branch of the chapter, run on a small synthetic file.

CIFAR-100 is not in the offline data mirror, so the committed execution of the
chapter reports it as missing and skips the trainings of Exercises 9 and 10.
This test exercises the other branch: it writes a *synthetic* file with
CIFAR-100's layout (random pixels, 100 classes) into a temporary data
directory whose name says so, runs the chapter's smoke profile on it and checks
that every CIFAR-100 quantity of the answer key was recorded. It checks the
code path only: values computed on random pixels mean nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
MIRROR = Path(os.environ.get("LIVRO_DATA", "/work/shared/data"))


def write_synthetic_cifar100(folder: Path, n_train: int = 600, n_test: int = 200) -> Path:
    """A CIFAR-100-shaped npz: uint8 images 32×32×3 and labels 0…99 (all present)."""
    rng = np.random.default_rng(0)
    path = folder / "cifar100.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, size=(n_train, 32, 32, 3), dtype=np.uint8),
        y_train=(np.arange(n_train) % 100).astype(np.uint8),
        x_test=rng.integers(0, 256, size=(n_test, 32, 32, 3), dtype=np.uint8),
        y_test=(np.arange(n_test) % 100).astype(np.uint8),
    )
    (folder / "LEIA-ME.txt").write_text(
        "cifar100.npz nesta pasta é SINTÉTICO (pixels aleatórios), feito por "
        "tests/test_modulo2.py só para exercitar o código do capítulo.\n"
    )
    return path


def cifar100_keys() -> list[str]:
    spec = yaml.safe_load((ROOT / "answers" / "modulo2.yml").read_text())
    return [
        q["key"]
        for ex in spec["exercises"].values()
        for q in ex.get("quantities", []) or []
        if q.get("needs_data") == "cifar100"
    ]


def test_cifar100_branch_runs_on_synthetic_data(tmp_path):
    data = (tmp_path / "dados-sinteticos-cifar100").resolve()
    data.mkdir()
    if MIRROR.is_dir():  # the rest of the data directory, as it is
        for item in MIRROR.iterdir():
            if item.name != "cifar100.npz":
                (data / item.name).symlink_to(item)
    synthetic = write_synthetic_cifar100(data)
    out = tmp_path / "out"

    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "execute.py"), "modulo2",
         "--profile", "smoke", "--out", str(out)],
        cwd=ROOT, env=dict(os.environ, LIVRO_DATA=str(data)),
        capture_output=True, text=True, timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    results = json.loads((out / "modulo2.json").read_text())
    assert "no_data" not in results, results.get("no_data")
    missing = [key for key in cifar100_keys() if key not in results["values"]]
    assert not missing, f"CIFAR-100 quantities not recorded: {missing}"
    assert results["data"]["cifar100.npz"]["source"] == str(synthetic)

    # the executed chapter names the (synthetic) file it read, and trained
    cells = json.loads((out / "modulo2.ipynb").read_text())["cells"]
    shown = json.dumps([cell.get("outputs", []) for cell in cells], ensure_ascii=False)
    assert str(synthetic) in shown
    assert "CIFAR-100 ausente" not in shown
    assert "Acurácia no teste" in shown
