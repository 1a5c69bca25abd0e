"""Small helpers that the chapters import.

Everything a student must learn (models, training loops, metrics) stays in the
chapters. This package only does bookkeeping:

* ``record(name, value)`` glues a computed number into the page (myst-nb
  ``glue``) and writes it to the chapter's results file, which ``make answers``
  and the tests read;
* ``spec(chapter)`` reads the chapter's answer key (``answers/<chapter>.yml``),
  the single place where options and documented ranges are written;
* ``seed(numpy_seed, tf_seed)`` sets the seeds the way the course did;
* ``shuffled_batches(x, y, batch_size)`` feeds ``fit`` batches in a new order
  every epoch on the TensorFlow backend, as the course's ``tf.keras`` did;
* ``validation_batches(x, y, batch_size)`` gives ``fit`` the same validation
  batches as arrays would, through a simpler, faster pipeline;
* ``fused_batch_norm()`` trains ``BatchNormalization`` on images with
  TensorFlow's fused kernel, as the course's ``tf.keras`` did;
* ``treino(nome, funcao, *args)`` runs a training once: during ``make execute`` its result
  is stored under ``results/treinos/`` and loaded while nothing it depends on changes
  (see ``livro/cache.py``);
* ``br(valor, fmt)`` and ``virgula(*axes)`` write numbers with a decimal comma in printed
  outputs and on figure axes (see ``livro/figuras.py``);
* ``livro.data`` loads datasets and weights (see that module).
"""
from __future__ import annotations

import json
import os
import random
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS_ENV = "LIVRO_RESULTS"


def _to_json(value):
    """Convert numpy scalars/arrays and tuples into plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


def update_results(section: str, key: str, value) -> None:
    """Write ``value`` under ``section/key`` of the results file of this run.

    The file is named by the ``LIVRO_RESULTS`` environment variable, which
    ``scripts/execute.py`` sets; outside an execution this does nothing.
    """
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(section, {})[key] = _to_json(value)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    tmp.replace(path)


class _Text(str):
    """A string whose repr is itself, so `{glue:text}` shows it without quotes."""

    def __repr__(self):
        return str(self)


def record(name: str, value, display: bool = False):
    """Glue ``value`` under ``name`` for the prose and record it for the checks.

    Outside ``make execute`` (no results file) nothing is written; without ``myst_nb``
    (a reader's own environment) the value is only shown, when ``display`` asks for it.
    """
    value = _to_json(value)
    update_results("values", name, value)
    shown = _Text(value) if isinstance(value, str) else value
    try:
        from myst_nb import glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(shown)
        return value
    glue(name, shown, display=display)
    return value


def spec(chapter: str) -> dict:
    """The answer key of a chapter: ``answers/<chapter>.yml`` (installed with the package)."""
    from livro.book import read_spec

    return read_spec(chapter)


def seed(numpy_seed: int = 1, tf_seed: int = 2) -> None:
    """Seed as the course did: NumPy with ``numpy_seed``, TensorFlow with ``tf_seed``.

    In Keras 3 the weight initialisers and dropout draw their seeds from Keras'
    own generator (fed by Python's ``random``), not from NumPy or TensorFlow.
    ``keras.utils.set_random_seed`` resets that generator and seeds Python,
    NumPy and TensorFlow together; NumPy is then re-seeded with its own value.
    """
    import keras

    keras.utils.set_random_seed(tf_seed)
    random.seed(tf_seed)
    np.random.seed(numpy_seed)


def shuffled_batches(x, y, batch_size: int, seed: int = 0):
    """Batches of ``(x, y)`` for ``fit``, in a new order every epoch.

    ``fit(x, y, shuffle=True)`` with NumPy arrays on Keras 3's TensorFlow backend
    repeats one order in every epoch once TensorFlow's global seed is set (as
    ``seed`` does); the course's ``tf.keras`` drew a new order each epoch. This
    ``tf.data`` pipeline shuffles the indices again at every pass, so the epochs
    differ, while the orders still follow from TensorFlow's global seed and
    ``seed``: two executions see the same sequence of orders. The last batch
    is smaller when ``len(x)`` is not a multiple of ``batch_size``, and float
    arrays become Keras' float type (float32), both as in ``fit``.
    """
    import tensorflow as tf

    x, y = _tensor(x), _tensor(y)
    # fit's default shuffle=True would warn that it ignores a Dataset: this one is shuffled here.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed", category=UserWarning)
    n = int(x.shape[0])
    return (
        tf.data.Dataset.range(n)
        .shuffle(n, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
        .prefetch(1)
        .with_options(_no_autotune())
    )


def validation_batches(x, y, batch_size: int):
    """``(x, y)`` in batches of ``batch_size``, for ``fit(validation_data=...)``.

    The same batches, in the same order, as ``validation_data=(x, y)`` with
    ``validation_batch_size=batch_size``, so the same numbers (tests/test_livro.py).
    Given arrays, Keras 3 runs them through its general pipeline (an index order
    computed at every pass, then a gather per batch) with tf.data's autotuner on;
    this one only slices the tensors in order, with the autotuner off.
    """
    import tensorflow as tf

    return (
        tf.data.Dataset.from_tensor_slices((_tensor(x), _tensor(y)))
        .batch(batch_size)
        .with_options(_no_autotune())
    )


def _tensor(a):
    """An array as a tensor; float arrays become Keras' float type (float32), as in ``fit``."""
    import keras
    import tensorflow as tf

    a = np.asarray(a)
    return tf.constant(a.astype(keras.config.floatx()) if a.dtype.kind == "f" else a)


def _no_autotune():
    """tf.data options with the autotuner off.

    On by default, it made about half of the epochs on this 2-core CPU run at two
    thirds of the speed (a whole epoch at a time); turning it off changes no batch and
    no order, only how tf.data schedules its threads (tests/test_livro.py).
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def fused_batch_norm() -> None:
    """Train ``BatchNormalization`` on images with TensorFlow's fused kernel.

    In training mode, Keras 3 normalises with separate operations (batch mean,
    variance, then the affine map), each a pass over the activations, and so does
    their gradient. ``tf.keras`` 2, which the course used, called the fused kernel
    ``FusedBatchNormV3`` for 4-D inputs normalised over the last axis; on this CPU
    it trains MobileNetV2 twice as fast. The mathematics is Keras 3's: the same
    normalisation, the same gradient, the moving statistics updated with the same
    momentum from the same (biased) batch variance; only the rounding differs
    (tests/test_livro.py). Other inputs, inference mode and backends other than
    TensorFlow keep Keras' own code. Call it once, before training.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    layer = keras.layers.BatchNormalization
    keras_call = layer.call
    if getattr(keras_call, "fused", False):
        return

    def call(self, inputs, training=None, mask=None):
        fusable = (training and self.trainable and mask is None and len(inputs.shape) == 4
                   and self.axis in (-1, 3) and inputs.dtype == tf.float32
                   and not self.renorm and not self.synchronized
                   and self.epsilon >= 1.001e-5)  # the fused kernel's smallest epsilon
        if not fusable:
            return keras_call(self, inputs, training=training, mask=mask)
        channels = self.moving_mean.shape
        gamma = self.gamma if self.scale else tf.ones(channels)
        beta = self.beta if self.center else tf.zeros(channels)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, epsilon=self.epsilon, is_training=True
        )
        # The kernel returns the unbiased variance (n - 1 in the denominator); Keras 3
        # updates the moving variance with the biased one, which it also normalises with.
        n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
        variance = variance * (n - 1.0) / n
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return outputs

    call.fused = True
    layer.call = call


def record_no_data(dataset: str, sentence: str) -> None:
    """Record that ``dataset`` was missing, so its checks report ``no-data``."""
    update_results("no_data", dataset, sentence)
    print(sentence)


from livro.cache import treino  # noqa: E402  (the training cache; see livro/cache.py)
from livro.figuras import br, virgula  # noqa: E402  (decimal comma in outputs and figures)
