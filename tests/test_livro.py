"""Unit tests of the helpers: data loader, recording, answer verdicts, staleness, execution."""
from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

import livro
from conftest import load_script
from livro import book, data

SHARED = book.ROOT.parent / "shared" / "data"


# --- data --------------------------------------------------------------------------

def test_missing_file_is_one_clear_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVRO_DATA", str(tmp_path))
    with pytest.raises(data.DataMissing) as error:
        data.load_cifar10()
    message = str(error.value)
    assert "cifar10.npz" in message and str(tmp_path) in message and "LIVRO_DATA" in message
    assert "\n" not in message


def test_corrupt_file_is_detected(tmp_path, monkeypatch):
    np.savez(tmp_path / "boston_housing.npz", x=np.zeros((506, 13)), y=np.zeros(506))
    monkeypatch.setenv("LIVRO_DATA", str(tmp_path))
    with pytest.raises(data.DataMissing, match="corrompido"):
        data.load_boston_housing()


def test_download_failure_is_one_clear_sentence(monkeypatch):
    monkeypatch.delenv("LIVRO_DATA", raising=False)
    message = None
    try:
        data._download("x.npz", lambda: (_ for _ in ()).throw(OSError("no network")))
    except data.DataMissing as error:
        message = str(error)
    assert message and "x.npz" in message and "LIVRO_DATA" in message


@pytest.mark.skipif(not SHARED.exists(), reason="offline data mirror not beside the repository")
def test_boston_split_matches_keras(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVRO_DATA", str(SHARED))
    monkeypatch.setenv("LIVRO_RESULTS", str(tmp_path / "r.json"))
    (x_train, y_train), (x_test, y_test) = data.load_boston_housing()
    assert x_train.shape == (404, 13) and x_test.shape == (102, 13)
    np.testing.assert_allclose(y_train[:5], [15.2, 42.3, 50.0, 21.1, 17.7])
    recorded = json.loads((tmp_path / "r.json").read_text())["data"]["boston_housing.npz"]
    assert recorded["sha256"] == data.SHA256["boston_housing.npz"]


# --- recording ---------------------------------------------------------------------

def test_record_writes_json_values(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVRO_RESULTS", str(tmp_path / "r.json"))
    livro.record("a", np.float32(0.5))
    livro.record("b", np.array([1, 2]))
    livro.record_no_data("cifar100", "sem dados")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["values"] == {"a": 0.5, "b": [1, 2]}
    assert saved["no_data"] == {"cifar100": "sem dados"}


def test_the_echo_of_a_final_record_call_is_dropped_from_the_book():
    import nbformat

    out = nbformat.v4.new_output("execute_result", {"text/plain": "0.5"}, execution_count=1)
    printed = nbformat.v4.new_output("stream", name="stdout", text="0.5\n")
    ends_with_record = nbformat.v4.new_code_cell('x = 1\nlivro.record("x",\n             x)')
    ends_with_other = nbformat.v4.new_code_cell('livro.record("x", 1)\nx')
    assert book._record_echo(ends_with_record, out)
    assert not book._record_echo(ends_with_record, printed)
    assert not book._record_echo(ends_with_other, out)


@pytest.mark.parametrize("chapter", book.chapters())
def test_built_chapters_show_no_bare_recorded_values(chapter):
    merged, current = book.merged_notebook(chapter)
    if not current:  # a mismatch is an error (livro.integrity), not a skip
        from livro import integrity

        pytest.fail("\n".join(integrity.problems(chapter))
                    or f"executed/{chapter}.ipynb does not hold the code of book/{chapter}.md", pytrace=False)
    echoes = [
        cell.source.splitlines()[-1]
        for cell in merged.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "execute_result" and "livro.record" in cell.source
    ]
    assert not echoes, f"book/{chapter}.md: bare recorded values shown after {echoes}"


# --- answer verdicts ---------------------------------------------------------------

@pytest.fixture
def key(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "ANSWERS", tmp_path)
    (tmp_path / "ch.yml").write_text(
        "chapter: ch\nexercises:\n"
        "  ex1:\n    answer: a\n    quantities:\n"
        "      - {key: acc, documented: 0.8, range: [0.7, 0.9]}\n"
        "      - {key: best, documented: [4, 16], expect: [4, 16]}\n"
        "      - {key: c100, needs_data: cifar100, range: [0, 1]}\n"
    )
    return tmp_path


def verdicts(results, deviations=None):
    return {r.quantity: r.verdict for r in book.check("ch", results, deviations or {})}


def test_verdicts(key):
    inside = {"values": {"acc": 0.8, "best": [16, 4]}, "no_data": {"cifar100": "absent"}}
    assert verdicts(inside) == {"acc": "inside", "best": "inside", "c100": "no-data"}
    outside = {"values": {"acc": 0.95, "best": [4, 8], "c100": 0.5}}
    assert verdicts(outside) == {"acc": "outside", "best": "outside", "c100": "inside"}
    assert verdicts(outside, {"ch.acc": dev(0.95)})["acc"] == "deviation"
    assert verdicts({"values": {}})["acc"] == "missing"
    # a registered deviation that is now inside must be noticed
    assert verdicts(inside, {"ch.acc": dev(0.95)})["acc"] == "outside"
    assert verdicts({"values": {"acc": float("nan")}})["acc"] == "outside"


def dev(value, tolerance=0.0):
    return {"reason": "uma razão registrada, em palavras", "value": value, "tolerance": tolerance}


def test_deviations_are_strict(key):
    """A registered deviation may come closer to its band or move at most its tolerance further
    away; a set or letter must stay what was registered; every other case fails by name."""
    def verdict(value, deviation, quantity="acc"):
        rows = book.check("ch", {"values": {"acc": 0.8, "best": [4, 16], quantity: value}},
                          {f"ch.{quantity}": deviation})
        return next(r for r in rows if r.quantity == quantity)

    assert verdict(0.95, dev(0.95)).verdict == "deviation"            # same value
    assert verdict(0.92, dev(0.95)).verdict == "deviation"            # closer to [0.7, 0.9]
    assert verdict(0.97, dev(0.95, 0.03)).verdict == "deviation"      # further, within tolerance
    assert verdict(0.65, dev(0.95, 0.03)).verdict == "deviation"      # below, as far as 0.95 plus tolerance
    worse = verdict(0.99, dev(0.95, 0.03))
    assert worse.verdict == "outside" and "ch.acc" in worse.note and "tolerance 0.03" in worse.note
    assert verdict(0.55, dev(0.95, 0.03)).verdict == "outside"        # further on the other side
    assert verdict([8, 4], dev([4, 8]), "best").verdict == "deviation"  # sets: order does not matter
    changed = verdict([4, 2], dev([4, 8]), "best")
    assert changed.verdict == "outside" and "ch.best" in book.problem(changed)
    row = verdict(0.97, dev(0.95, 0.03))
    assert (row.registered, row.tolerance) == (0.95, 0.03)


def test_deviations_file_format_is_validated(tmp_path):
    path = tmp_path / "deviations.yml"
    path.write_text('ch.acc: {reason: "uma razão registrada, em palavras", value: 0.95, tolerance: 0.01}\n')
    assert book.read_deviations(path)["ch.acc"]["tolerance"] == 0.01
    for bad, says in [('ch.acc: "só a razão, como antes era o formato"\n', "ch.acc"),
                      ('ch.acc: {reason: "uma razão registrada, em palavras", value: 0.95}\n', "tolerance"),
                      ('ch.acc: {reason: "uma razão registrada, em palavras", value: 0.95, tolerance: -1}\n',
                       "tolerance"),
                      ('acc: {reason: "uma razão registrada, em palavras", value: 0.95, tolerance: 0}\n', "acc")]:
        path.write_text(bad)
        with pytest.raises(book.DeviationsError, match=says) as error:
            book.read_deviations(path)
        assert "deviations.yml" in str(error.value)


def test_problem_sentence_names_what_and_where(key):
    row = book.check("ch", {"values": {"acc": 0.95}}, {})[0]
    sentence = book.problem(row)
    assert "ch ex1 (acc)" in sentence and "0.95" in sentence and "[0.7, 0.9]" in sentence


# --- staleness, merge, execution ---------------------------------------------------

CHAPTER = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---
# Teste

```{code-cell} ipython3
:tags: [parameters]

PROFILE = "full"
```

PROSE

```{code-cell} ipython3
import livro
livro.record("answer", 42 if PROFILE == "full" else 1)
CODE
```
"""


def load_execute():
    return load_script("execute")


@pytest.fixture
def tiny_book(tmp_path, monkeypatch):
    for name in ("BOOK", "EXECUTED", "RESULTS"):
        (tmp_path / name).mkdir()
        monkeypatch.setattr(book, name, tmp_path / name)
    write = lambda prose="Texto.", code="": (tmp_path / "BOOK" / "t.md").write_text(  # noqa: E731
        CHAPTER.replace("PROSE", prose).replace("CODE", code))
    write()
    return tmp_path, write


def test_execute_stale_merge_and_atomic_failure(tiny_book, capsys):
    root, write = tiny_book
    execute = load_execute()
    assert book.staleness("t").endswith("make execute CHAPTER=t)")
    assert execute.execute("t", "full", None) == 0
    results = json.loads((root / "RESULTS" / "t.json").read_text())
    assert results["values"]["answer"] == 42
    prov = results["provenance"]
    assert prov["profile"] == "full" and prov["wall_seconds"] > 0 and prov["versions"]["keras"]
    assert book.staleness("t") is None
    executed_at = prov["date"]
    assert execute.execute("t", "full", None, force=False) == 0  # unchanged: not re-executed
    assert "up to date" in capsys.readouterr().out
    assert json.loads((root / "RESULTS" / "t.json").read_text())["provenance"]["date"] == executed_at

    write(prose="Texto novo.")  # prose only: not stale, and the merge shows the new prose
    assert book.staleness("t") is None
    merged, ok = book.merged_notebook("t")
    assert ok and any("Texto novo." in c.source for c in merged.cells)
    assert any(o for c in merged.cells if c.cell_type == "code" for o in c.get("outputs", []))

    write(code="raise ValueError('quebrado')")  # code changed: stale, and a failing run …
    assert "is stale" in book.staleness("t")
    before = (root / "RESULTS" / "t.json").read_text()
    assert execute.execute("t", "full", None) == 1
    message = capsys.readouterr().out
    assert "failed in cell" in message and "ValueError: quebrado" in message
    assert (root / "RESULTS" / "t.json").read_text() == before  # … leaves outputs untouched


def test_smoke_profile_writes_elsewhere(tiny_book, tmp_path):
    root, _ = tiny_book
    out = tmp_path / "smoke"
    assert load_execute().execute("t", "smoke", out) == 0
    assert json.loads((out / "t.json").read_text())["values"]["answer"] == 1
    assert not (root / "RESULTS" / "t.json").exists()


def test_newly_installed_library_does_not_invalidate_an_execution(tiny_book, monkeypatch):
    root, _ = tiny_book
    execute = load_execute()
    assert execute.execute("t", "full", None) == 0
    code = book.code_hash(book.read_source("t"))
    assert execute.up_to_date("t", code)
    real = execute.versions()
    monkeypatch.setattr(execute, "versions", lambda: {**real, "some-new-package": "1.0"})
    assert execute.up_to_date("t", code)  # installed since: irrelevant to this chapter
    monkeypatch.setattr(execute, "versions", lambda: {**real, "keras": "0.0.1"})
    assert not execute.up_to_date("t", code)  # a recorded library changed: re-execute


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the data directory the chapters were executed with")
def test_make_execute_on_the_committed_book_runs_nothing(monkeypatch):
    monkeypatch.setenv("LIVRO_DATA", str(SHARED))
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    execute = load_execute()
    would_run = [ch for ch in book.chapters() if book.read_results(ch) is not None
                 and not execute.up_to_date(ch, book.code_hash(nb := book.read_source(ch)), execute.keras_backend(nb))]
    assert not would_run, f"`make execute` would re-execute {would_run}: code, libraries or data changed since"


def test_chapter_front_matter_chooses_the_keras_backend(tiny_book, monkeypatch):
    root, _ = tiny_book
    execute = load_execute()
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    source = root / "BOOK" / "t.md"
    assert execute.keras_backend(book.read_source("t")) == "tensorflow"
    source.write_text(source.read_text().replace("kernelspec:", "livro:\n  keras_backend: jax\nkernelspec:", 1))
    assert execute.keras_backend(book.read_source("t")) == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # the environment overrides, and is recorded
    assert execute.keras_backend(book.read_source("t")) == "torch"


# --- a library behaviour the book relies on ---------------------------------------

_BATCH_ORDER = '''
import json, numpy as np, keras, livro
seen = []
class Spy(keras.layers.Layer):
    def call(self, x):
        try:
            seen.append(np.asarray(x).ravel().astype(int).tolist())
        except Exception:  # the symbolic call while the model is built
            pass
        return x
livro.seed(1, 2)
i = keras.Input((1,))
m = keras.Model(i, keras.layers.Dense(1)(Spy()(i)))
m.compile(optimizer="sgd", loss="mse", run_eagerly=True)
x = np.arange(20, dtype="float32").reshape(20, 1)
m.fit(x, x, batch_size=20, epochs=3, verbose=0)
print(json.dumps(seen))
'''


def _seen_batches(script: str, backend: str) -> list:
    """Run ``script`` in a fresh process on ``backend``; return what it printed last (JSON)."""
    import subprocess
    import sys

    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-c", script], cwd=book.ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_seeded_fit_batch_order_per_backend(backend):
    """book/trabalho2.md says: after livro.seed, Keras' TensorFlow fit shuffles NumPy arrays
    in the same order every epoch, while the JAX fit draws a new order each epoch."""
    if backend == "jax" and importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    orders = _seen_batches(_BATCH_ORDER, backend)
    assert len(orders) == 3 and all(sorted(o) == list(range(20)) for o in orders)
    same = orders[0] == orders[1] == orders[2]
    if backend == "tensorflow":
        assert same, ("Keras' TensorFlow fit now reshuffles each epoch after livro.seed: "
                      "update the seeds paragraph and 'Faixas e sorteios' in book/trabalho2.md")
    else:
        assert not same, "the JAX fit repeated one batch order across epochs"


_SHUFFLED_BATCHES = _BATCH_ORDER.replace(
    "m.fit(x, x, batch_size=20, epochs=3, verbose=0)",
    "m.fit(livro.shuffled_batches(x, x, 20), epochs=3, verbose=0)\n"
    "batches = list(livro.shuffled_batches(x.astype('float64'), x, 8))\n"
    "seen.append([len(b[0]) for b in batches] + sorted({b[0].dtype.name for b in batches}))",
)


def test_shuffled_batches_reshuffle_each_epoch_and_repeat_across_runs():
    """livro.shuffled_batches (used by the TensorFlow chapters) gives fit a new order every
    epoch, and two executions after livro.seed see the same orders."""
    runs = [_seen_batches(_SHUFFLED_BATCHES, "tensorflow") for _ in range(2)]
    *orders, sizes = runs[0]
    assert len(orders) == 3 and all(sorted(o) == list(range(20)) for o in orders)
    assert len({tuple(o) for o in orders}) == 3, f"an order repeated across epochs: {orders}"
    assert sizes == [8, 8, 4, "float32"], "batch sizes or dtype differ from fit's"
    assert runs[0] == runs[1], "two seeded executions saw different batch orders"


def test_shuffled_batches_turn_off_the_autotuner_without_changing_the_order():
    """The pipeline runs with tf.data's autotuner off (it slowed whole epochs on 2 cores),
    and sees the same batches, in the same orders, as the same pipeline with it on."""
    import tensorflow as tf

    x = np.arange(40, dtype="float32").reshape(20, 2)

    def orders(ds):
        tf.random.set_seed(7)
        it = iter(ds.repeat(3))
        return [[int(v) for v in next(it)[1].numpy()] for _ in range(3 * 3)]

    tf.random.set_seed(7)
    ds = livro.shuffled_batches(x, np.arange(20), 8, seed=3)
    assert ds.options().autotune.enabled is False
    reference = (tf.data.Dataset.range(20).shuffle(20, seed=3, reshuffle_each_iteration=True)
                 .batch(8).map(lambda i: (tf.gather(tf.constant(x), i), i)))
    assert orders(ds) == orders(reference)


def test_validation_batches_give_fit_the_same_numbers():
    """livro.validation_batches (slices in order) and validation_data=(x, y) with the same
    validation_batch_size give the same losses, to the last bit, with one training step
    per call or several."""
    import keras

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)).astype("float32"), rng.normal(size=(40, 1))
    xv, yv = rng.normal(size=(20, 3)), rng.normal(size=(20, 1)).astype("float32")

    def history(validation, steps_per_execution=1):
        livro.seed(1, 2)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1)])
        m.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse",
                  steps_per_execution=steps_per_execution)
        return m.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, **validation).history

    batches = livro.validation_batches(xv, yv, 8)
    assert [len(b[0]) for b in batches] == [8, 8, 4]
    assert {b[0].dtype.name for b in batches} == {"float32"}
    assert batches.options().autotune.enabled is False
    arrays = history({"validation_data": (xv, yv), "validation_batch_size": 8})
    assert history({"validation_data": batches}) == arrays
    # book/estudo_de_caso.md also runs several steps per call (steps_per_execution): same numbers
    assert history({"validation_data": batches}, steps_per_execution=3) == arrays


def test_fused_batch_norm_keeps_keras_mathematics(monkeypatch):
    """livro.fused_batch_norm: in training, 4-D inputs go through TensorFlow's fused kernel
    and give Keras 3's outputs, gradients and moving statistics up to rounding; other inputs
    keep Keras' own code, bit for bit."""
    import keras
    import tensorflow as tf

    layer = keras.layers.BatchNormalization
    monkeypatch.setattr(layer, "call", layer.call)  # undone after the test
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(2.0, 3.0, (16, 6, 6, 8)).astype("float32"))
    flat = tf.constant(rng.normal(2.0, 3.0, (16, 8)).astype("float32"))

    def train_step(x):
        bn = layer(momentum=0.9)
        bn.build(x.shape)
        bn.gamma.assign(np.linspace(0.5, 1.5, 8).astype("float32"))
        bn.beta.assign(np.linspace(-1.0, 1.0, 8).astype("float32"))
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = bn(x, training=True)
            loss = tf.reduce_sum(out * tf.sin(out))
        grads = tape.gradient(loss, [x, bn.gamma, bn.beta])
        ops = {op.type for op in tf.function(lambda v: bn(v, training=True))
               .get_concrete_function(x).graph.get_operations()}
        return ([out.numpy(), *[g.numpy() for g in grads], bn.moving_mean.numpy(),
                 bn.moving_variance.numpy(), bn(x, training=False).numpy()], ops)

    keras_images, keras_ops = train_step(images)
    keras_flat, _ = train_step(flat)
    livro.fused_batch_norm()
    livro.fused_batch_norm()  # a second call changes nothing
    fused_images, fused_ops = train_step(images)
    fused_flat, _ = train_step(flat)
    assert "FusedBatchNormV3" in fused_ops and "FusedBatchNormV3" not in keras_ops
    names = ["output", "d/dx", "d/dgamma", "d/dbeta", "moving mean", "moving variance", "inference"]
    for name, a, b in zip(names, keras_images, fused_images):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max(), err_msg=name)
    for name, a, b in zip(names, keras_flat, fused_flat):
        np.testing.assert_array_equal(b, a, err_msg=f"2-D input, {name}")


def test_presentation_tags_do_not_change_the_code_hash():
    """Hiding a cell (hide-input, remove-cell) changes the page, not the execution: the chapter
    stays up to date; a tag papermill or nbclient acts on (parameters, skip-execution) does not."""
    nb = book.read_source(book.chapters()[0])
    before = book.code_hash(nb)
    cell = book.code_cells(nb)[-1]
    cell.metadata.setdefault("tags", []).extend(["hide-input", "remove-cell"])
    assert book.code_hash(nb) == before
    cell.metadata["tags"].append("skip-execution")
    assert book.code_hash(nb) != before


def test_decimal_comma_in_outputs_and_on_axes():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert livro.br(0.98219, ".4f") == "0,9822"
    assert livro.br(12345.6, ",.1f") == "12.345,6"
    fig, (linear, log) = plt.subplots(1, 2)
    linear.plot([0, 1], [0.25, 0.75])
    log.semilogy([1, 2], [0.01, 10])
    livro.virgula()
    fig.canvas.draw()
    rotulos = [t.get_text() for t in linear.get_yticklabels() if t.get_text()]
    assert rotulos and all("." not in r for r in rotulos) and any("," in r for r in rotulos), rotulos
    assert type(log.yaxis.get_major_formatter()).__name__ != "Virgula"
    plt.close(fig)


def test_reader_seconds_count_every_training_as_if_it_ran():
    """A chapter that loaded its trainings took seconds; the reader's run takes their time too."""
    prov = {"date": "2026-12-01T12:00:00+00:00", "wall_seconds": 100.0}
    recorded = {"provenance": prov, "treinos": {
        "a": {"loaded": True, "trained": "2026-12-01T11:00:00+00:00", "seconds": 900.0, "call_seconds": 1.0},
        "b": {"loaded": False, "trained": "2026-12-01T11:59:00+00:00", "seconds": 60.0, "call_seconds": 61.0}}}
    assert book.reader_seconds(recorded) == 100.0 - 62.0 + 960.0
    for used in recorded["treinos"].values():  # an execution from before call_seconds was recorded
        del used["call_seconds"]
    assert book.reader_seconds(recorded) == 100.0 + 900.0  # the earlier run's training is added
    assert book.reader_seconds({"provenance": {}}) is None
