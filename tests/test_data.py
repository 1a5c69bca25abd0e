"""The same data from the offline mirror or the Keras downloads (livro/data.py), and the
data checks of `make execute`: content checksums, verified downloads, the MobileNetV2 file,
one sentence per data fault, and the no-data state as part of the up-to-date check.

There is no internet here: the Keras loaders and `keras.utils.get_file` are replaced by
functions that serve the mirror's arrays in Keras' own shapes (`keras_from_mirror`).
"""
from __future__ import annotations

import functools
import importlib.util
import json
import shutil
import subprocess

import numpy as np
import pytest

from livro import book, data

MIRROR = book.ROOT.parent / "shared" / "data"
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason="offline data mirror not beside the repository")


def load_execute():
    spec = importlib.util.spec_from_file_location("execute", book.ROOT / "scripts" / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=None)
def mirror_arrays(name: str) -> dict:
    """The arrays of a mirror file, read once per test session (never modify them in place)."""
    with np.load(MIRROR / name) as arrays:
        return {key: arrays[key] for key in arrays.files}


def keras_boston():
    """What keras.datasets.boston_housing.load_data() returns, from the mirror's file."""
    arrays = mirror_arrays("boston_housing.npz")
    order = np.arange(len(arrays["x"]))
    np.random.RandomState(113).shuffle(order)
    x, y = arrays["x"][order], arrays["y"][order]
    cut = int(len(x) * (1 - 0.2))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def keras_images(name: str, labels_shape=(-1, 1)):
    """What keras.datasets.<name>.load_data() returns (labels shaped (N, 1) for CIFAR-10)."""
    a = mirror_arrays(name)
    return (a["x_train"], a["y_train"].reshape(labels_shape)), (a["x_test"], a["y_test"].reshape(labels_shape))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh checksum cache and Keras cache for the test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path


@pytest.fixture
def keras_from_mirror(cache, monkeypatch):
    """No data folder; the Keras downloads serve the mirror's arrays; CIFAR-100 cannot be
    downloaded (no internet). Returns the list of get_file calls."""
    import keras

    monkeypatch.delenv("LIVRO_DATA", raising=False)
    monkeypatch.setattr(keras.datasets.boston_housing, "load_data", keras_boston)
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data",
                        lambda: keras_images("fashion_mnist.npz", (-1,)))
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: keras_images("cifar10.npz"))

    def no_internet(**options):
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.cifar100, "load_data", no_internet)
    fetched = []

    def get_file(fname=None, origin=None, **options):
        fetched.append((fname, origin, options))
        return str(MIRROR / data.WEIGHTS)

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    return fetched


def recorded(results_file) -> dict:
    return json.loads(results_file.read_text())["data"]


# --- issue #25: the same data on both paths -----------------------------------------------

LOADS = [data.load_boston_housing, data.load_fashion_mnist, data.load_cifar10, data.mobilenet_v2_weights]


@needs_mirror
def test_downloads_record_the_mirrors_content_checksums(keras_from_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVRO_RESULTS", str(tmp_path / "download.json"))
    weights = data.mobilenet_v2_weights()
    for load in LOADS:
        load()
    monkeypatch.setenv("LIVRO_DATA", str(MIRROR))
    monkeypatch.setenv("LIVRO_RESULTS", str(tmp_path / "mirror.json"))
    for load in LOADS:
        load()
    download, mirror = recorded(tmp_path / "download.json"), recorded(tmp_path / "mirror.json")
    assert set(download) == set(mirror) == {"boston_housing.npz", "fashion_mnist.npz", "cifar10.npz", data.WEIGHTS}
    for name in mirror:
        assert download[name]["content_sha256"] == mirror[name]["content_sha256"] == data.CONTENT[name], name
        assert download[name]["source"].startswith("download da Keras") and download[name]["sha256"] is None
        assert mirror[name]["source"] == str(MIRROR.resolve() / name) and mirror[name]["sha256"] == data.SHA256[name]
    # The weights: Keras' 224×224 no-top file, whatever the chapter's input size; never "imagenet".
    assert weights == str(MIRROR / data.WEIGHTS) and download[data.WEIGHTS]["source"] == f"download da Keras ({weights})"
    assert keras_from_mirror[0] == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        {"cache_subdir": "models"},
    )


@needs_mirror
def test_committed_book_is_up_to_date_from_the_downloads(keras_from_mirror, monkeypatch):
    """`make execute` on the committed book, with the downloads and no data folder, runs nothing."""
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    execute = load_execute()
    would_run = [ch for ch in book.chapters() if book.read_results(ch) is not None
                 and not execute.up_to_date(ch, book.code_hash(nb := book.read_source(ch)), execute.keras_backend(nb))]
    assert not would_run, f"`make execute` would re-execute {would_run} from the Keras downloads"
    assert execute.data_problems(book.chapters()) == {}


@needs_mirror
def test_a_changed_array_makes_the_chapter_stale(keras_from_mirror, monkeypatch):
    import keras

    execute = load_execute()
    nb = book.read_source("trabalho2")
    assert execute.up_to_date("trabalho2", book.code_hash(nb), execute.keras_backend(nb))
    (x, y), test = keras_images("cifar10.npz")
    x = x.copy()
    x[123, 4, 5, 0] ^= 1  # one pixel, one bit
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: ((x, y), test))
    assert not execute.up_to_date("trabalho2", book.code_hash(nb), execute.keras_backend(nb))


def test_a_changed_optional_dataset_is_a_change(cache, tmp_path, monkeypatch):
    """CIFAR-100 has no known checksum: what a chapter read is compared with what it would read."""
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), y_train=np.arange(20, dtype=np.uint8),
                  x_test=rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), y_test=np.arange(10, dtype=np.uint8))
    np.savez(tmp_path / "cifar100.npz", **arrays)
    monkeypatch.setenv("LIVRO_DATA", str(tmp_path))
    monkeypatch.setenv("LIVRO_RESULTS", str(tmp_path / "r.json"))
    data.load_cifar100()
    results = {"data": recorded(tmp_path / "r.json")}
    assert data.same_data(results)
    arrays["y_test"][0] = 99
    np.savez(tmp_path / "cifar100.npz", **arrays)
    assert not data.same_data(results)


@needs_mirror
def test_a_corrupt_download_is_one_sentence(keras_from_mirror, monkeypatch):
    import keras

    (x, y), (xt, yt) = keras_images("cifar10.npz")
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: ((x[:-1], y[:-1]), (xt, yt)))  # truncated
    with pytest.raises(data.DataMissing) as error:
        data.load_cifar10()
    message = str(error.value)
    assert "cifar10" in message and str(data.keras_home() / "datasets" / "cifar-10-batches-py-target") in message
    assert "apague" in message and "\n" not in message


@needs_mirror
def test_changed_downloaded_weights_are_one_sentence(keras_from_mirror, tmp_path, monkeypatch):
    import h5py
    import keras

    changed = tmp_path / "keras" / "models" / data.WEIGHTS_KERAS
    changed.parent.mkdir(parents=True)
    shutil.copy(MIRROR / data.WEIGHTS, changed)
    with h5py.File(changed, "r+") as handle:
        handle["Conv1/Conv1/kernel:0"][0, 0, 0, 0] += 1.0
    monkeypatch.setattr(keras.utils, "get_file", lambda *args, **options: str(changed))
    with pytest.raises(data.DataMissing) as error:
        data.mobilenet_v2_weights()
    message = str(error.value)
    assert data.WEIGHTS in message and str(changed) in message and "\n" not in message


@needs_mirror
def test_checksums_are_cached_per_file(cache, monkeypatch):
    monkeypatch.setenv("LIVRO_DATA", str(MIRROR))
    first = data.identity("cifar10.npz")
    monkeypatch.setattr(data, "_read", lambda name: pytest.fail(f"{name} read again although unchanged"))
    assert data.identity("cifar10.npz") == first
    assert data.identity("cifar10") == first  # the name record_no_data uses


@needs_mirror
def test_download_checksums_are_cached_per_file(keras_from_mirror, monkeypatch):
    batches = data.keras_files("cifar10.npz")[0] / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    (batches / "data_batch_1").write_bytes(b"what Keras downloaded")
    first = data.identity("cifar10.npz")
    assert first["content_sha256"] == data.CONTENT["cifar10.npz"]
    calls, read = [], data._read
    monkeypatch.setattr(data, "_read", lambda name: calls.append(name) or read(name))
    assert data.identity("cifar10.npz") == first and calls == []  # unchanged: from the cache
    (batches / "data_batch_1").write_bytes(b"what Keras downloaded again")
    assert data.identity("cifar10.npz") == first and calls == ["cifar10.npz"]  # changed: read again


# --- issue #24: one sentence per data fault; data checked before a run ---------------------

def data_folder(tmp_path, without=()):
    """A data folder with the mirror's files (links) except `without`."""
    folder = tmp_path / "dados"
    folder.mkdir()
    for item in MIRROR.iterdir() if MIRROR.is_dir() else []:
        if item.name not in without:
            (folder / item.name).symlink_to(item)
    return folder


def test_a_corrupt_optional_dataset_is_one_sentence(cache, tmp_path, monkeypatch):
    folder = data_folder(tmp_path)
    (folder / "cifar100.npz").write_bytes(b"not a zip file")
    monkeypatch.setenv("LIVRO_DATA", str(folder))
    with pytest.raises(data.DataUnusable) as error:
        data.load_cifar100()
    message = str(error.value)
    assert str(folder / "cifar100.npz") in message and "\n" not in message
    assert load_execute().data_problems(["modulo2"]) == {"modulo2": [message]}


def test_a_wrong_data_folder_is_one_sentence(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVRO_DATA", str(tmp_path / "nao-existe"))
    with pytest.raises(data.DataUnusable, match="não é uma pasta") as error:
        data.load_cifar10()
    assert str(tmp_path / "nao-existe") in str(error.value) and "\n" not in str(error.value)


def make_data_folder(repo, *variables) -> str:
    """LIVRO_DATA as the Makefile of `repo` sets it."""
    out = subprocess.run(["make", "-s", "-C", str(repo), "--eval", "show-data: ; @echo [$(LIVRO_DATA)]",
                          "show-data", *variables], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    return out.stdout.strip()


def test_the_makefile_uses_a_data_folder_without_a_checksum_list(tmp_path):
    repo, folder = tmp_path / "livro", tmp_path / "shared" / "data"
    repo.mkdir()
    folder.mkdir(parents=True)
    shutil.copy(book.ROOT / "Makefile", repo / "Makefile")
    (folder / "cifar10.npz").write_bytes(b"")  # no SHA256SUMS: livro/data.py holds the checksums
    assert make_data_folder(repo) == f"[{folder}]"
    # The advice for the downloads works although the Makefile sets a default.
    assert make_data_folder(repo, "LIVRO_DATA=") == "[]"


def test_the_advice_for_the_downloads_is_one_the_makefile_keeps(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("LIVRO_DATA", str(tmp_path))
    with pytest.raises(data.DataMissing) as error:
        data.load_cifar10()
    assert "LIVRO_DATA=" in str(error.value) and "remova" not in str(error.value)


def test_data_is_checked_before_any_chapter_starts(cache, tmp_path, monkeypatch, capsys):
    folder = data_folder(tmp_path, without={"boston_housing.npz"})
    np.savez(folder / "boston_housing.npz", x=np.zeros((506, 13)), y=np.zeros(506))  # not the mirror's
    monkeypatch.setenv("LIVRO_DATA", str(folder))
    execute = load_execute()
    started = []
    monkeypatch.setattr(execute, "execute", lambda chapter, *args, **options: started.append(chapter) or 0)
    assert execute.main(["modulo3", "trabalho2", "--profile", "smoke", "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert f"[modulo3] not executed, DataMissing: O arquivo {folder / 'boston_housing.npz'} está corrompido" in out
    assert started == (["trabalho2"] if MIRROR.is_dir() else [])


@needs_mirror
def test_adding_a_dataset_re_executes_the_chapter_that_lacked_it(cache, tmp_path, monkeypatch):
    assert "cifar100" in book.read_results("modulo2").get("no_data", {})
    folder = data_folder(tmp_path, without={"cifar100.npz"})
    monkeypatch.setenv("LIVRO_DATA", str(folder))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    execute = load_execute()
    nb = book.read_source("modulo2")
    assert execute.up_to_date("modulo2", book.code_hash(nb), execute.keras_backend(nb))
    rng = np.random.default_rng(0)
    np.savez(folder / "cifar100.npz", x_train=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
             y_train=np.arange(20, dtype=np.uint8), x_test=rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
             y_test=np.arange(10, dtype=np.uint8))
    assert not execute.up_to_date("modulo2", book.code_hash(nb), execute.keras_backend(nb))
