"""Datasets and pretrained weights: the same arrays from the offline mirror or the Keras downloads.

Two sources give the chapters their data:

* ``LIVRO_DATA`` names a folder (layout of the course's offline mirror: ``cifar10.npz``,
  ``fashion_mnist.npz``, ``boston_housing.npz``, ``mobilenet_v2_1.0_224_no_top.h5`` and, where
  someone has it, ``cifar100.npz``); each file's SHA-256 is checked against the mirror's
  list (``SHA256``, a copy of its ``SHA256SUMS``, so the folder needs no list of its own);
* without it (unset or empty), the Keras downloads: ``keras.datasets`` for the datasets and,
  for the MobileNetV2 weights, ``keras.utils.get_file`` of Keras' own 224×224 no-top file,
  the checkpoint the mirror holds (``weights="imagenet"`` at the book's 128×128 input would
  load another one). A reader with internet needs nothing else.

Whichever the source, a dataset is identified by the checksum of its arrays as the chapter
receives them (``content_sha256``: each array's dtype, shape and bytes, in order; for the
weights, the arrays ``load_weights`` reads, in its order). ``CONTENT`` holds the values of
the mirror's files: a download whose arrays differ is refused. Every load records the
source, the file checksum (mirror) and the content checksum in the chapter's results, and
``same_data`` tells whether a chapter would receive the same data now (``scripts/execute.py``
uses it to decide whether a chapter is up to date). The checksums are cached per file
(path, size, modification time) in ``$XDG_CACHE_HOME/livro`` (``~/.cache/livro``), so that
check costs milliseconds once a file has been read.

Every problem ends in one ``DataMissing`` sentence: which file, where it was looked for,
and how to fix it. ``DataUnusable``, a kind of ``DataMissing``, is data that is there but
cannot be used (a corrupt file or download, a data folder that does not exist): unlike an
absent optional dataset, never a state a chapter may record and go on with.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from livro import update_results

DATA_ENV = "LIVRO_DATA"
# The advice for using the downloads: `make` sets LIVRO_DATA to ../shared/data when it is
# unset, so only an empty value turns the data folder off.
USE_DOWNLOADS = f"deixe {DATA_ENV} vazio para usar os downloads da Keras (make execute {DATA_ENV}=)"

WEIGHTS = "mobilenet_v2_1.0_224_no_top.h5"
WEIGHTS_KERAS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + WEIGHTS_KERAS

# File checksums of the offline mirror (its SHA256SUMS).
SHA256 = {
    "boston_housing.npz": "0c1bbf0b79b8c2996afa31b259ca6cff56f5a6f72501358901ae5aa8fadd6e2f",
    "cifar10.npz": "a44cc18e4ad961b5158c7da062a6232fb65938b615bf013046199b823b75c43d",
    "fashion_mnist.npz": "5b6d2c4c694a91887af8ab7d039c04f80af3c29378d731c93a538d2e831aa469",
    WEIGHTS: "8ecfc1ea842cb363fcad18477b045139c29f4eff469034f82ea2377370c8e770",
    # cifar100.npz: not in the mirror; any readable file with that layout is accepted
    # and its checksums are written to the chapter's provenance.
}

# Content checksums (content_sha256) of what the chapters receive from the mirror's files:
# the values a download must give too.
CONTENT = {
    "boston_housing.npz": "4d64a846e2ae977444fdf1ca209511605caae80d4c75472d656f393b510c8949",
    "cifar10.npz": "6bf32fdd2b1ca2e33ab10b8a8a0fe5619d51819aca98e32ba5b1df432ec8ae4f",
    "fashion_mnist.npz": "c330ac97a07ddc4e8affa31a8425c577ebf25e35f763480f30bc48f8a68733ac",
    WEIGHTS: "74b621d020c9f203797b3e06e4f253f9bad3fec8e5c6854f39abda502c16835f",
}

# Datasets a chapter may lack (not in the mirror): absent, the chapter records no-data.
OPTIONAL = {"cifar100.npz"}

# Where each Keras download lands, relative to the Keras cache ($KERAS_HOME, ~/.keras).
KERAS_FILES = {
    "boston_housing.npz": ["datasets/boston_housing.npz"],
    "fashion_mnist.npz": ["datasets/fashion-mnist"],
    "cifar10.npz": ["datasets/cifar-10-batches-py-target", "datasets/cifar-10-batches-py-target_archive"],
    "cifar100.npz": ["datasets/cifar-100-python-target", "datasets/cifar-100-python-target_archive"],
    WEIGHTS: ["models/" + WEIGHTS_KERAS],
}

# The functions of this module a chapter calls, and the file each needs.
LOADERS = {
    "load_boston_housing": "boston_housing.npz",
    "load_fashion_mnist": "fashion_mnist.npz",
    "load_cifar10": "cifar10.npz",
    "load_cifar100": "cifar100.npz",
    "mobilenet_v2_weights": WEIGHTS,
}


class DataMissing(RuntimeError):
    """A dataset or weights file could not be found, read or verified."""


class DataUnusable(DataMissing):
    """The data is there but cannot be used: corrupt, not the book's, or a wrong data folder."""


def data_dir() -> Path | None:
    """The data folder (``LIVRO_DATA``), or None when unset or empty (the Keras downloads)."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return None
    folder = Path(value).expanduser().resolve()
    if not folder.is_dir():
        raise DataUnusable(
            f"{DATA_ENV}={value} não é uma pasta: aponte {DATA_ENV} para a pasta de dados "
            f"(a do espelho offline) ou {USE_DOWNLOADS}."
        )
    return folder


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(value) -> str:
    """Checksum of what a chapter receives: each array's dtype, shape and bytes, in order
    (nested tuples flattened), whatever the memory layout; for a weights file (a path), the
    arrays ``load_weights`` reads from it, in its order."""
    digest = hashlib.sha256()
    for array in _arrays(value):
        array = np.asarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def _arrays(value):
    if isinstance(value, (str, Path)):
        yield from _weight_arrays(Path(value))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _arrays(item)
    else:
        yield value


def _weight_arrays(path: Path):
    """The arrays of a Keras (legacy h5) weights file, in the order ``load_weights`` reads them."""
    import h5py

    text = lambda name: name.decode() if isinstance(name, bytes) else name  # noqa: E731
    with h5py.File(path, "r") as handle:
        group = handle["model_weights"] if "model_weights" in handle else handle
        for layer in group.attrs["layer_names"]:
            layer = group[text(layer)]
            for weight in layer.attrs["weight_names"]:
                yield layer[text(weight)][()]


def keras_home() -> Path:
    """The Keras cache folder, as Keras chooses it."""
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path.home()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def keras_files(name: str) -> list[Path]:
    """What the Keras download of ``name`` leaves in the Keras cache."""
    return [keras_home() / part for part in KERAS_FILES[name]]


def _name(dataset: str) -> str:
    """The file name of a dataset: ``cifar100`` (as ``record_no_data`` names it) → ``cifar100.npz``."""
    return dataset if dataset in KERAS_FILES else f"{dataset}.npz"


# --- reading ------------------------------------------------------------------------

def _from_file(name: str, path: Path):
    if name == WEIGHTS:
        return str(path)
    with np.load(path) as arrays:
        if name == "boston_housing.npz":
            x, y = arrays["x"], arrays["y"]
            order = np.arange(len(x))
            np.random.RandomState(113).shuffle(order)  # Keras' own split (seed 113, 80%)
            cut = int(len(x) * 0.8)
            return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])
        return (arrays["x_train"], arrays["y_train"].reshape(-1)), (
            arrays["x_test"],
            arrays["y_test"].reshape(-1),
        )


def _from_keras(name: str):
    import keras

    if name == WEIGHTS:  # the 224×224 file whatever the input size: the checkpoint the book used
        return keras.utils.get_file(WEIGHTS_KERAS, WEIGHTS_URL, cache_subdir="models")
    loader = {
        "boston_housing.npz": keras.datasets.boston_housing.load_data,
        "fashion_mnist.npz": keras.datasets.fashion_mnist.load_data,
        "cifar10.npz": keras.datasets.cifar10.load_data,
        "cifar100.npz": lambda: keras.datasets.cifar100.load_data(label_mode="fine"),
    }[name]
    (a, b), (c, d) = loader()
    return (a, b.reshape(-1)), (c, d.reshape(-1))


def _download(name: str, fetch):
    try:
        return fetch()
    except Exception as error:  # no internet, server down
        raise DataMissing(
            f"Não foi possível baixar {name} pela Keras ({type(error).__name__}); "
            f"sem internet, aponte {DATA_ENV} para uma pasta que contenha {name}."
        ) from None


def _read(name: str):
    """What the chapter receives for ``name`` from the active source, verified, and its provenance."""
    folder = data_dir()
    if folder is not None:
        path = folder / name
        if not path.is_file():
            raise DataMissing(f"O arquivo {name} não está em {folder} ({DATA_ENV}); copie-o para lá ou {USE_DOWNLOADS}.")
        digest, expected = sha256(path), SHA256.get(name)
        if expected is not None and digest != expected:
            raise DataUnusable(
                f"O arquivo {path} está corrompido (SHA-256 {digest[:12]}…, esperado "
                f"{expected[:12]}…); copie-o de novo do espelho de dados."
            )
        files, source = [path], str(path)
        what, fix = f"O arquivo {path}", "copie-o de novo do espelho de dados" if name not in OPTIONAL else (
            "substitua-o por uma cópia íntegra ou apague-o (sem ele, o capítulo diz que ele falta)")
        fetch = lambda: _from_file(name, path)  # noqa: E731
    else:
        files, digest = keras_files(name), None
        source = f"download da Keras ({files[0]})"
        cached = " e ".join(str(f) for f in files)
        what, fix = f"O download de {name} pela Keras", f"apague {cached} e execute de novo para baixá-lo outra vez"
        # Nothing in the Keras cache: a failure is a failed download; otherwise a broken cache.
        fetch = (lambda: _from_keras(name)) if any(f.exists() for f in files) else (
            lambda: _download(name, lambda: _from_keras(name)))
    try:
        value = fetch()
        content = content_sha256(value)
    except DataMissing:
        raise
    except Exception as error:
        detail = " ".join(str(error).split())[:200]  # one line, whatever the library said
        raise DataUnusable(f"{what} não pôde ser lido ({type(error).__name__}: {detail}); {fix}.") from None
    if folder is None and isinstance(value, str):  # the weights: where get_file put them
        source = f"download da Keras ({value})"
    expected = CONTENT.get(name)
    if expected is not None and content != expected:
        raise DataUnusable(
            f"{what} não tem os dados com que o livro foi executado (conteúdo {content[:12]}…, "
            f"esperado {expected[:12]}…); {fix}."
        )
    provenance = {"source": source, "sha256": digest, "content_sha256": content}
    _remember(files, provenance)
    return value, provenance


def _load(name: str):
    value, provenance = _read(name)
    update_results("data", name, provenance)
    return value


def load_boston_housing():
    """(x_train, y_train), (x_test, y_test) exactly as Keras splits them."""
    return _load("boston_housing.npz")


def load_fashion_mnist():
    return _load("fashion_mnist.npz")


def load_cifar10():
    return _load("cifar10.npz")


def load_cifar100(label_mode: str = "fine"):
    """CIFAR-100 (fine labels): not part of the offline mirror."""
    if label_mode != "fine":
        raise ValueError("Só os rótulos finos (label_mode='fine') da CIFAR-100 são usados no livro.")
    return _load("cifar100.npz")


def mobilenet_v2_weights() -> str:
    """Path of the MobileNetV2 (alpha 1.0, 224×224, no top) ImageNet weights: the data folder's
    file or, without one, the same weights downloaded by Keras (verified by content)."""
    return _load(WEIGHTS)


# --- what a chapter would receive now -------------------------------------------------

def identity(dataset: str) -> dict:
    """Provenance (source, sha256, content_sha256) of what a chapter would receive now for
    ``dataset``, verified like a load; from the per-file cache when the files are unchanged.
    Raises ``DataMissing`` (``DataUnusable`` when the data is there but cannot be used)."""
    name = _name(dataset)
    folder = data_dir()
    files = [folder / name] if folder is not None else keras_files(name)
    known = _recall(files)  # verified when cached; the known values may have changed since
    if known is not None and known["content_sha256"] == CONTENT.get(name, known["content_sha256"]) \
            and known["sha256"] in (None, SHA256.get(name, known["sha256"])):
        return known
    return _read(name)[1]


def same_data(results: dict) -> bool:
    """Would the chapter whose results these are receive the same data now? Every dataset it
    read must give the same content checksum, and every dataset it lacked (``no_data``) must
    still be absent: adding it re-executes the chapter."""
    for name, used in (results.get("data") or {}).items():
        try:
            now = identity(name)
        except DataMissing:
            return False
        if not used.get("content_sha256") or used["content_sha256"] != now["content_sha256"]:
            return False
    for dataset in results.get("no_data") or {}:
        try:
            identity(dataset)
        except DataUnusable:
            return False  # there but broken: not the recorded state either
        except DataMissing:
            continue
        return False
    return True


def needed(code: str) -> list[str]:
    """The files a chapter's code asks this module for (``load_cifar10()`` → ``cifar10.npz``)."""
    called = re.findall(r"\b(" + "|".join(LOADERS) + r")\s*\(", code)
    return list(dict.fromkeys(LOADERS[function] for function in called))


# --- per-file cache of the checksums ---------------------------------------------------

def _cache_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "livro" / "data-checksums.json"


def _stamp(files: list[Path]) -> str | None:
    """Path, size and modification time of every file there (folders walked); None if none is."""
    entries = []
    for top in files:
        paths = sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else [top] if top.is_file() else []
        for path in paths:
            stat = path.stat()
            entries.append([str(path), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest() if entries else None


def _cache() -> dict:
    try:
        return json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _recall(files: list[Path]) -> dict | None:
    stamp = _stamp(files)
    return _cache().get(stamp) if stamp else None


def _remember(files: list[Path], provenance: dict) -> None:
    """Cache a verified provenance under the files' stamp (a cache: failures are ignored)."""
    stamp = _stamp(files)
    if stamp is None:
        return
    cache = _cache()
    cache[stamp] = provenance
    target = _cache_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".data-checksums-")
        with os.fdopen(handle, "w") as out:
            json.dump(cache, out, indent=1)
        os.replace(tmp, target)
    except OSError:
        pass
