"""Datasets and pretrained weights, read from a data directory or downloaded.

If the environment variable ``LIVRO_DATA`` names a folder, the files below are
read from it (layout of the course's offline mirror: ``cifar10.npz``,
``fashion_mnist.npz``, ``boston_housing.npz``, ``mobilenet_v2_1.0_224_no_top.h5``
and, where someone has it, ``cifar100.npz``), and their SHA-256 checksums are
verified. Without ``LIVRO_DATA`` the usual Keras downloads are used, so a
reader with internet needs nothing else.

Every problem ends in one ``DataMissing`` sentence: which file, where it was
looked for, and how to fix it.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from livro import update_results

DATA_ENV = "LIVRO_DATA"

# Checksums of the offline mirror (its SHA256SUMS file).
SHA256 = {
    "boston_housing.npz": "0c1bbf0b79b8c2996afa31b259ca6cff56f5a6f72501358901ae5aa8fadd6e2f",
    "cifar10.npz": "a44cc18e4ad961b5158c7da062a6232fb65938b615bf013046199b823b75c43d",
    "fashion_mnist.npz": "5b6d2c4c694a91887af8ab7d039c04f80af3c29378d731c93a538d2e831aa469",
    "mobilenet_v2_1.0_224_no_top.h5": "8ecfc1ea842cb363fcad18477b045139c29f4eff469034f82ea2377370c8e770",
    # cifar100.npz: not in the mirror; any file with that layout is accepted
    # and its checksum is written to the chapter's provenance.
}


class DataMissing(RuntimeError):
    """A dataset or weights file could not be found, read or verified."""


def data_dir() -> Path | None:
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser().resolve() if value else None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def local_file(name: str) -> Path | None:
    """Path of ``name`` in the data directory, verified; None without one."""
    folder = data_dir()
    if folder is None:
        return None
    path = folder / name
    if not path.is_file():
        raise DataMissing(
            f"O arquivo {name} não está em {folder} ({DATA_ENV}); copie-o para lá "
            f"ou remova {DATA_ENV} para baixá-lo pela Keras."
        )
    digest = sha256(path)
    expected = SHA256.get(name)
    if expected is not None and digest != expected:
        raise DataMissing(
            f"O arquivo {path} está corrompido (SHA-256 {digest[:12]}…, esperado "
            f"{expected[:12]}…); copie-o de novo do espelho de dados."
        )
    update_results("data", name, {"source": str(path), "sha256": digest})
    return path


def _download(name: str, loader):
    try:
        result = loader()
    except Exception as error:  # no internet, server down, broken cache
        raise DataMissing(
            f"Não foi possível baixar {name} pela Keras ({type(error).__name__}); "
            f"sem internet, aponte {DATA_ENV} para uma pasta que contenha {name}."
        ) from None
    update_results("data", name, {"source": "keras download", "sha256": None})
    return result


def _npz_images(name: str):
    with np.load(local_file(name)) as arrays:
        return (arrays["x_train"], arrays["y_train"].reshape(-1)), (
            arrays["x_test"],
            arrays["y_test"].reshape(-1),
        )


def load_boston_housing():
    """(x_train, y_train), (x_test, y_test) exactly as Keras splits them."""
    if data_dir() is None:
        import keras

        return _download("boston_housing.npz", keras.datasets.boston_housing.load_data)
    with np.load(local_file("boston_housing.npz")) as arrays:
        x, y = arrays["x"], arrays["y"]
    order = np.arange(len(x))
    np.random.RandomState(113).shuffle(order)  # Keras' own split (seed 113, 80%)
    cut = int(len(x) * 0.8)
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


def load_fashion_mnist():
    if data_dir() is None:
        import keras

        (a, b), (c, d) = _download("fashion_mnist.npz", keras.datasets.fashion_mnist.load_data)
        return (a, b.reshape(-1)), (c, d.reshape(-1))
    return _npz_images("fashion_mnist.npz")


def load_cifar10():
    if data_dir() is None:
        import keras

        (a, b), (c, d) = _download("cifar10.npz", keras.datasets.cifar10.load_data)
        return (a, b.reshape(-1)), (c, d.reshape(-1))
    return _npz_images("cifar10.npz")


def load_cifar100(label_mode: str = "fine"):
    """CIFAR-100 (fine labels): not part of the offline mirror."""
    if data_dir() is None:
        import keras

        (a, b), (c, d) = _download(
            "cifar100.npz", lambda: keras.datasets.cifar100.load_data(label_mode=label_mode)
        )
        return (a, b.reshape(-1)), (c, d.reshape(-1))
    return _npz_images("cifar100.npz")


def mobilenet_v2_weights() -> str:
    """Path of the MobileNetV2 (alpha 1.0, 224, no top) ImageNet weights, or "imagenet"."""
    path = local_file("mobilenet_v2_1.0_224_no_top.h5")
    return str(path) if path is not None else "imagenet"
