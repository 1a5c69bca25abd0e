"""The training cache (livro/cache.py): what invalidates an entry, what does not, and that a
stored training gives the chapter exactly what training it again would.

The chapter code is run as a notebook runs it: cells compiled into a ``__main__`` namespace,
their source registered in ``linecache`` as IPython does, so that ``inspect`` finds it.
"""
from __future__ import annotations

import itertools
import json
import linecache
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import livro  # noqa: E402
from livro import cache  # noqa: E402

_cells = itertools.count()

CHAPTER = """
import numpy as np
import keras
import livro

x = np.random.RandomState(0).rand(64, 4).astype("float32")
y = (x.sum(axis=1) > 2).astype("float32")
EPOCAS = 3


def ativacao():
    return "relu"


def rede(unidades=4):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(unidades, activation=ativacao()),
                             keras.layers.Dense(1, activation="sigmoid")])


def treinar(lote=16):
    livro.seed(1, 2)
    modelo = rede()
    modelo.compile(optimizer="adam", loss="binary_crossentropy")
    historico = modelo.fit(livro.shuffled_batches(x, y, lote), epochs=EPOCAS, verbose=0)
    return {"perda": historico.history["loss"], "pesos": modelo.get_weights()[0],
            "previsto": modelo.predict(x, verbose=0).reshape(-1)}


def grafico(h):
    return "um gráfico: " + str(len(h["perda"]))
"""


def run_cell(ns: dict, source: str) -> None:
    source = textwrap.dedent(source)
    name = f"<celula-{next(_cells)}>"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    exec(compile(source, name, "exec"), ns)


def chapter(*edits: tuple[str, str]) -> dict:
    source = CHAPTER
    for old, new in edits:
        assert old in source
        source = source.replace(old, new)
    ns = {"__name__": "__main__"}
    run_cell(ns, source)
    return ns


def key_of(ns, *args, **kwargs) -> str:
    return cache.key(ns["treinar"], args, kwargs)[0]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "treinos"))
    monkeypatch.delenv(cache.RUN_ENV, raising=False)
    monkeypatch.delenv(cache.FILL_ENV, raising=False)
    monkeypatch.setenv("LIVRO_RESULTS", str(tmp_path / "results.json"))
    return tmp_path / "treinos"


def test_what_changes_the_key():
    base = key_of(chapter())
    assert key_of(chapter()) == base  # deterministic
    changed = {
        "a hyper-parameter (global)": chapter(("EPOCAS = 3", "EPOCAS = 4")),
        "the model builder": chapter(("Dense(unidades, activation", "Dense(unidades + 1, activation")),
        "a helper the builder calls": chapter(('return "relu"', 'return "tanh"')),
        "a default argument": chapter(("def treinar(lote=16)", "def treinar(lote=8)")),
        "the data": chapter(('astype("float32")\ny =', 'astype("float32") * 1.0001\ny =')),
    }
    for what, ns in changed.items():
        assert key_of(ns) != base, f"changing {what} must invalidate the entry"
    assert key_of(chapter(), 8) != base, "an argument must be part of the key"


def test_what_does_not_change_the_key():
    base = key_of(chapter())
    same = {
        "a plot function": chapter(('"um gráfico: "', '"outro gráfico: "')),
        "an unrelated global": chapter(("EPOCAS = 3", "EPOCAS = 3\nTITULO = 'Curvas'")),
        "a comment elsewhere": chapter(("def grafico(h):", "# prosa\ndef grafico(h):")),
    }
    for what, ns in same.items():
        assert key_of(ns) == base, f"changing {what} must not invalidate the entry"


def test_a_library_version_and_the_backend_are_part_of_the_key(monkeypatch):
    ns = chapter()
    base = key_of(ns)
    real = cache.library_versions()
    monkeypatch.setattr(cache, "library_versions", lambda: {**real, "keras": "0.0.1"})
    assert key_of(ns) != base
    monkeypatch.setattr(cache, "library_versions", lambda: real)
    assert key_of(ns) == base
    # The backend: the same chapter in a process on another Keras backend.
    script = (f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]\n"
              "import test_treino as t; print(t.key_of(t.chapter()))")
    keys = {}
    for backend in ("tensorflow", "jax"):
        env = {**os.environ, "KERAS_BACKEND": backend}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        keys[backend] = out.stdout.strip().splitlines()[-1]
    assert keys["tensorflow"] != keys["jax"]


def test_stored_training_is_what_training_again_gives(store, capsys):
    ns = chapter()
    first = livro.treino("t", ns["treinar"])
    assert "guardado no cache" in capsys.readouterr().out
    assert (store / "t.json").is_file() and (store / "t.npz").is_file()
    again = livro.treino("t", chapter()["treinar"])  # a new execution of the same chapter
    out = capsys.readouterr().out
    assert "carregado do cache (treinado em" in out and " s, com " in out
    assert again["perda"] == first["perda"]
    np.testing.assert_array_equal(again["pesos"], first["pesos"])
    recorded = json.loads((store.parent / "results.json").read_text())["treinos"]["t"]
    assert recorded["loaded"] is True and recorded["key"] == key_of(ns)
    entry = json.loads((store / "t.json").read_text())
    assert {"date", "seconds", "cpu", "cores_used", "run"} <= set(entry["provenance"])
    assert entry["environment"]["backend"] == "tensorflow"


def test_a_changed_hyperparameter_trains_again(store, capsys):
    livro.treino("t", chapter()["treinar"])
    capsys.readouterr()
    livro.treino("t", chapter(("EPOCAS = 3", "EPOCAS = 2"))["treinar"])
    assert "guardado no cache" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["truncate", "edit value", "drop arrays"])
def test_a_damaged_entry_is_reported_and_trained_again(store, capsys, damage):
    ns = chapter()
    first = livro.treino("t", ns["treinar"])
    capsys.readouterr()
    path = store / "t.json"
    if damage == "truncate":
        path.write_text(path.read_text()[:200])
    elif damage == "edit value":
        entry = json.loads(path.read_text())
        entry["value"]["perda"][0] += 0.5
        path.write_text(json.dumps(entry))
    else:
        (store / "t.npz").unlink()
    assert cache.verify(path) is not None
    value = livro.treino("t", ns["treinar"])
    out = capsys.readouterr().out
    assert "Treino «t»: a entrada t.json do cache está corrompida" in out
    assert "guardado no cache" in out
    assert value["perda"] == first["perda"]
    assert cache.verify(path, key_of(ns)) is None


def test_force_trains_entries_of_earlier_runs_only(store, monkeypatch, capsys):
    ns = chapter()
    livro.treino("t", ns["treinar"])
    monkeypatch.setenv(cache.RUN_ENV, "run-2")
    livro.treino("t", ns["treinar"])
    assert "guardado no cache" in capsys.readouterr().out
    livro.treino("t", ns["treinar"])  # written by this same run (e.g. by a helper lane): loaded
    assert "carregado do cache" in capsys.readouterr().out


def test_a_fill_process_skips_a_training_another_process_holds(store, monkeypatch):
    ns = chapter()
    monkeypatch.setenv(cache.FILL_ENV, "1")
    with cache._lock(store / "t.json", wait=True):
        with pytest.raises(cache.TreinoEmOutroProcesso):
            livro.treino("t", ns["treinar"])
    assert not (store / "t.json").exists()


def test_without_a_cache_folder_the_training_just_runs(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    value = livro.treino("t", chapter()["treinar"])
    assert len(value["perda"]) == 3 and isinstance(value["pesos"], np.ndarray)
    assert list(tmp_path.iterdir()) == []


def test_a_model_is_not_a_training_result(store):
    ns = chapter()
    run_cell(ns, "def errado():\n    return rede()\n")
    with pytest.raises(TypeError, match="um modelo inteiro não vai para o cache"):
        livro.treino("errado", ns["errado"])


LANE = """
import sys; sys.path[:0] = [{root!r}, {tests!r}]
import json, test_treino as t
ns = t.chapter()
t.run_cell(ns, "def outro():\\n    return treinar(lote=8)\\n")
order = {order!r}
out = {{}}
for name in order:
    out[name] = ns["outro" if name == "a" else "treinar"]()["perda"]
print(json.dumps(out["b"]))
"""


def test_history_is_bit_identical_in_a_lane_or_after_other_trainings():
    """Training b alone in its own process (a helper lane) or after training a in the same
    process (the chapter) gives the very same history: each training seeds itself."""
    results = []
    for order in (["a", "b"], ["b"]):
        script = LANE.format(root=str(ROOT), tests=str(ROOT / "tests"), order=order)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env={**os.environ, "KERAS_BACKEND": "tensorflow"})
        assert out.returncode == 0, out.stderr[-2000:]
        results.append(out.stdout.strip().splitlines()[-1])
    assert results[0] == results[1]


def test_a_chapter_whose_stored_training_changed_is_stale(tmp_path):
    from livro import book

    results = {"treinos": {"t": {"key": "k1"}}}
    problems = cache.stale_trainings("cap", results, tmp_path / "results")
    assert problems and "o treino «t» de cap (results/treinos/cap/t.json) não existe" in problems[0]
    assert cache.stale_trainings("cap", {}, tmp_path / "results") == []
    committed = [ch for ch in book.chapters()
                 if cache.stale_trainings(ch, book.read_results(ch) or {}, book.RESULTS)]
    assert not committed, f"committed chapters use missing or damaged trainings: {committed}"


def test_load_only_refuses_to_train(store, monkeypatch):
    ns = chapter()
    monkeypatch.setenv(cache.LOAD_ONLY_ENV, "1")
    with pytest.raises(RuntimeError, match="«t» não está no cache e LIVRO_TREINO_LOAD_ONLY=1 proíbe treinar"):
        livro.treino("t", ns["treinar"])
    monkeypatch.delenv(cache.LOAD_ONLY_ENV)
    livro.treino("t", ns["treinar"])
    monkeypatch.setenv(cache.LOAD_ONLY_ENV, "1")
    livro.treino("t", chapter()["treinar"])  # same key: loads
    with pytest.raises(RuntimeError, match="com outra chave"):
        livro.treino("t", chapter(("EPOCAS = 3", "EPOCAS = 2"))["treinar"])
