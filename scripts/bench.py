"""Measure how fast this machine trains each heavy exercise of the book: `make bench`.

For every workload below (a model as its chapter builds it, trained with the chapter's batch
size on synthetic inputs of the right shape: only the timing matters here), one child process
per variant (Keras backend, XLA on or off, all cores or one: "@1") measures

- setup: build + compile + the first two steps (graph tracing or XLA compilation included);
- steady-state seconds per step, hence images per second;
- training FLOPs per image, counted from the convolution and dense layers
  (forward multiply-adds x 2, and x 3 for forward + backward when the model is trained);
- the achieved fraction of this machine's peak, measured in the same run as the best
  float32 matrix product NumPy manages on all cores.

Speeds of the variants are reported as ratios to plain TensorFlow measured in the same run,
because absolute times on a shared machine drift. A one-core variant ("tensorflow@1", its
child pinned to one core) is reported as the work two such lanes do together, which is how
`make execute` runs the book (scripts/execute.py, --jobs), and the table ends with the
full profile's estimated time in those two lanes. The table is printed and written to
results/bench.json, which the provenance page shows.

The model builders mirror the chapters' code (section named in each workload); they exist
only to be timed. A chapter's own code is what the book runs. Each workload lists the
chapter's trainings it stands for (the names given to `livro.treino`), with the images each
pushes through the model in the full profile; tests/test_bench.py checks that every training
of the book is listed, so the FLOP floor (`floor_seconds`) covers the whole book.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from math import log2, prod
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "bench.json"
sys.path.insert(0, str(ROOT))  # the livro package, for children and for the table
VARIANTS = ["tensorflow", "tensorflow+xla", "jax", "tensorflow@1", "jax@1"]
LANES = 2  # `make execute` on this book's 2-core machines: two chapters at once, one core each


# --------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    chapter: str
    name: str          # the exercise, as the chapter names it
    build: Callable    # build(keras) -> model
    batch: int
    optimizer: str = "adam"
    loss: str = "categorical_crossentropy"
    logits: bool = False  # the model ends in logits and the loss applies the softmax
    train: bool = True  # False: forward pass only (feature extraction)
    # Images the chapter's full profile pushes through this model: trained (forward and
    # backward) and forward only (validation, evaluate, predict). 0: not estimated. Given by
    # `trainings` when it is set (their sums).
    full_train: int = 0
    full_forward: int = 0
    # The chapter's trainings this model accounts for, by the name each gets in
    # `livro.treino("name", ...)` ("{s}" stands for a part the chapter fills in a loop), each
    # with its (trained, forward-only) images; tests/test_bench.py checks that every
    # `livro.treino` of the book is here.
    trainings: dict[str, tuple[int, int]] = field(default_factory=dict)
    # The chapter's recorded parameter count of this model ("chapter/key" in results/), which
    # tests/test_bench.py compares with the builder below, so the two cannot drift apart.
    params_key: str = ""
    # The chapter feeds fit through livro.shuffled_batches (TensorFlow chapters that shuffle):
    # the TensorFlow variants time that pipeline, the others fit on the arrays.
    shuffled: bool = False
    steps_per_execution: int = 1  # as the chapter compiles the model

    def __post_init__(self):
        if self.trainings:
            self.full_train = sum(t for t, _ in self.trainings.values())
            self.full_forward = sum(f for _, f in self.trainings.values())


def fit_images(train: int, epochs: int, validation: int = 0, evaluated: int = 0) -> tuple[int, int]:
    """(trained, forward-only) images of one training: `train` images for `epochs` epochs, the
    `validation` images once per epoch, then `evaluated` images through evaluate or predict."""
    return train * epochs, validation * epochs + evaluated


def times(n: int, images: tuple[int, int]) -> tuple[int, int]:
    """The images of `n` trainings alike (seeds, architectures of the same size)."""
    return n * images[0], n * images[1]


def epochs_run(chapter: str, name: str, planned: int) -> int:
    """The epochs a training with early stopping actually ran: the length of the history in its
    committed cache entry (results/treinos/<chapter>/<name>.json); `planned` where there is none."""
    try:
        entry = json.loads((ROOT / "results" / "treinos" / chapter / f"{name}.json").read_text())
        return len(entry["value"]["historico"]["loss"])
    except (OSError, ValueError, KeyError, TypeError):
        return planned


def _dense_stack(keras, entrada, camadas):
    layers = keras.layers
    modelo = keras.Sequential([keras.Input(shape=(entrada,))])
    for n in camadas:
        modelo.add(layers.Dense(n, activation="relu"))
    modelo.add(layers.Dense(1, activation="relu"))
    return modelo


def m3_inception(keras):  # modulo3, Exercício 10
    L = keras.layers

    def modulo(x, f1, f2i, f2o, f3i, f3o, f4o):
        r1 = L.Conv2D(f1, 1, padding="same", activation="relu")(x)
        r2 = L.Conv2D(f2o, 3, padding="same", activation="relu")(L.Conv2D(f2i, 1, padding="same", activation="relu")(x))
        r3 = L.Conv2D(f3o, 5, padding="same", activation="relu")(L.Conv2D(f3i, 1, padding="same", activation="relu")(x))
        r4 = L.Conv2D(f4o, 1, padding="same", activation="relu")(L.MaxPooling2D(3, strides=1, padding="same")(x))
        return L.Concatenate()([r1, r2, r3, r4])

    entrada = keras.Input(shape=(28, 28, 1))
    x = L.MaxPooling2D(2, strides=2, padding="same")(modulo(entrada, 32, 32, 32, 32, 32, 16))
    x = L.MaxPooling2D(2, strides=2, padding="same")(modulo(x, 32, 64, 64, 64, 64, 16))
    return keras.Model(entrada, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)))


def m3_resnet(keras):  # modulo3, Exercício 10
    L = keras.layers
    entrada = keras.Input(shape=(28, 28, 1))
    x = entrada
    for _ in range(3):
        atalho = x if x.shape[-1] == 64 else L.Conv2D(64, 1, padding="same", activation="relu")(x)
        y = L.Conv2D(64, 3, padding="same", activation="relu")(x)
        y = L.Conv2D(64, 3, padding="same")(y)
        x = L.MaxPooling2D(2, strides=2, padding="same")(L.Activation("relu")(L.Add()([y, atalho])))
    return keras.Model(entrada, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)))


def m4_cnn_residual(keras):  # modulo4, Exercício 8 (com aumento de dados, normalização, dropout 0,2)
    L = keras.layers
    entradas = keras.Input(shape=(128, 128, 3))
    aumento = keras.Sequential([L.RandomFlip("horizontal"), L.RandomContrast(0.3), L.RandomRotation(0.2)])
    x = L.Activation("relu")(L.BatchNormalization()(L.Conv2D(32, 3, strides=2, padding="same")(aumento(entradas))))
    residual = x
    for n in [32, 32]:
        x = L.SeparableConv2D(n, 3, padding="same")(L.Activation("relu")(x))
        x = L.SeparableConv2D(n, 3, padding="same")(L.Activation("relu")(L.BatchNormalization()(x)))
        x = L.MaxPooling2D(3, strides=2, padding="same")(L.BatchNormalization()(x))
        x = L.add([x, L.Conv2D(n, 1, strides=2, padding="same")(residual)])
        residual = x
    x = L.Activation("relu")(L.BatchNormalization()(L.SeparableConv2D(256, 3, padding="same")(x)))
    x = L.Dropout(0.2)(L.GlobalAveragePooling2D()(x))
    return keras.Model(entradas, L.Dense(10, activation="softmax")(x))


def _mobilenet(keras, trainable):
    L = keras.layers
    base = keras.applications.MobileNetV2(input_shape=(128, 128, 3), include_top=False, weights=None)
    base.trainable = trainable
    entradas = keras.Input(shape=(128, 128, 3))
    if not trainable:  # Ex. 9: the frozen base in inference mode
        return keras.Model(entradas, L.GlobalAveragePooling2D()(base(entradas, training=False)))

    class SempreEmModoDeTreino(L.Layer):  # Ex. 10: the base always in training mode, as the chapter's
        def __init__(self, base):
            super().__init__()
            self.base = base

        def call(self, imagens):
            return self.base(imagens, training=True)

    x = L.GlobalAveragePooling2D()(SempreEmModoDeTreino(base)(entradas))
    return keras.Model(entradas, L.Dense(10, activation="softmax")(L.Dropout(0.2)(x)))


def t2_residual(keras, units, dropout=0.0):  # trabalho2, Exercícios 3 e 7
    L = keras.layers
    entradas = keras.Input(shape=(32, 32, 3))
    x = L.Flatten()(entradas)
    for n in units:
        x = L.Dense(n, activation="relu")(x)
        if dropout:
            x = L.Dropout(dropout)(x)
        z = L.Dense(n)(L.Dense(n, activation="relu")(x))
        x = L.Activation("relu")(L.Add()([x, z]))
    return keras.Model(entradas, L.Dense(10)(x))  # logits, as in the chapter


def ec_rede(keras, filtros, dropouts, normalizacao, l2=None, dropout_topo=0.0):  # estudo_de_caso
    """The case study's networks: per block a 3×3 convolution (L2 `l2` if given), batch
    normalisation if `normalizacao`, 2×2 max-pooling and dropout; then a dense 512 (the same L2),
    its normalisation, dropout `dropout_topo`, softmax. The L2 factors and the dropout rates
    change no arithmetic; they are kept so that the timing matches the chapter's."""
    L = keras.layers
    reg = keras.regularizers.l2(l2) if l2 else None
    camadas = [keras.Input(shape=(32, 32, 3))]
    for f, d in zip(filtros, dropouts):
        camadas.append(L.Conv2D(f, 3, padding="same", activation="relu", kernel_regularizer=reg))
        if normalizacao:
            camadas.append(L.BatchNormalization())
        camadas.append(L.MaxPooling2D(2))
        if d:
            camadas.append(L.Dropout(d))
    camadas += [L.Flatten(), L.Dense(512, activation="relu", kernel_regularizer=reg)]
    if normalizacao:
        camadas.append(L.BatchNormalization())
    if dropout_topo:
        camadas.append(L.Dropout(dropout_topo))
    camadas.append(L.Dense(10, activation="softmax"))
    return keras.Sequential(camadas)


# Image counts of the full profile, from each chapter's settings (cell named in the comment).
BOSTON_TRAIN, BOSTON_TEST = 404, 102  # modulo3 and modulo4 load the same split
M3_EX8_EPOCHS = sum(int(log2(512 * lote)) for lote in (2, 4, 8, 16, 32, 64, 128, 256))  # epocas_8, LOTES_8
M3_SEEDS = 9  # SEMENTES_ROBUSTEZ = range(1, 11) less the course's pair (1, 2), trained as ex7_A/ex7_B/ex8
# modulo4: N_TREINO, N_VAL = 15 000, 5 000, EPOCAS_CIFAR = 5; treinar_ex8 validates every epoch and
# then evaluates the training and validation images
M4_CIFAR = fit_images(15_000, 5, validation=5_000, evaluated=20_000)
# trabalho2 and its appendix controle_trabalho2: 50 000 images x 100 epochs, validation on the
# 10 000 test images every epoch, then evaluate on both
T2 = fit_images(50_000, 100, validation=10_000, evaluated=60_000)


def ec(name: str, train: int, planned: int) -> tuple[int, int]:
    """A case-study training (treino_da_equipe): `train` images for the epochs it ran, validation on
    N_VAL = 10 000 every epoch, then evaluate on its training images, on the validation and on
    the test images, and predict the test images (N_TESTE = 10 000)."""
    return fit_images(train, epochs_run("estudo_de_caso", name, planned), validation=10_000,
                      evaluated=train + 10_000 + 2 * 10_000)


WORKLOADS = [
    # modulo3 Ex. 7 (treina_7: EPOCAS_7 = 50, validation on the test set every epoch) and Ex. 8
    # (experimento_8: one network per batch size, epocas_8(lote) epochs, then evaluate on the test
    # set; timed here at batch 32, so the estimate is low for the smallest batches), once with the
    # course's seeds and again with each other pair of SEMENTES_ROBUSTEZ
    Workload("modulo3", "Ex. 7–8: rede densa 16-8-1 (Boston), lote 32", lambda k: _dense_stack(k, 13, [16, 8]), 32, loss="mse",
             shuffled=True, trainings={
                 "ex7_A": fit_images(BOSTON_TRAIN, 50, validation=BOSTON_TEST),
                 "ex7_B": fit_images(BOSTON_TRAIN, 50, validation=BOSTON_TEST),
                 "ex8": fit_images(BOSTON_TRAIN, M3_EX8_EPOCHS, evaluated=8 * BOSTON_TEST),
                 "ex7_A_s{s}": times(M3_SEEDS, fit_images(BOSTON_TRAIN, 50, validation=BOSTON_TEST)),
                 "ex7_B_s{s}": times(M3_SEEDS, fit_images(BOSTON_TRAIN, 50, validation=BOSTON_TEST)),
                 "ex8_s{s}": times(M3_SEEDS, fit_images(BOSTON_TRAIN, M3_EX8_EPOCHS, evaluated=8 * BOSTON_TEST)),
             }),
    # modulo3 Ex. 10 (treina_10): N_TREINO_10 = 800 images x EPOCAS_10 = 100; then evaluate on
    # those 800 and on the 10 000 test images
    Workload("modulo3", "Ex. 10: Inception (Fashion-MNIST), lote 64", m3_inception, 64, optimizer="sgd",
             params_key="modulo3/ex10_param_inception", shuffled=True,
             trainings={"ex10_inception": fit_images(800, 100, evaluated=10_800)}),
    Workload("modulo3", "Ex. 10: ResNet (Fashion-MNIST), lote 64", m3_resnet, 64, optimizer="sgd",
             params_key="modulo3/ex10_param_resnet", shuffled=True,
             trainings={"ex10_resnet": fit_images(800, 100, evaluated=10_800)}),
    # modulo4 Ex. 6 (treinos_boston): the three architectures A, B, C (12 dense layers of 6, with
    # or without normalisation and dropout) x SEMENTES = 10 seeds x EPOCAS_BOSTON = 50 epochs,
    # validation on the test set every epoch
    Workload("modulo4", "Ex. 6–7: 12 camadas densas de 6 (Boston), lote 32", lambda k: _dense_stack(k, 13, [6] * 12), 32, loss="mse",
             shuffled=True, trainings={"ex6_boston": times(3 * 10, fit_images(BOSTON_TRAIN, 50, validation=BOSTON_TEST))}),
    # modulo4 Ex. 8 and its two controls (contrast per batch, another crop of CIFAR-10): the same
    # network and image counts
    Workload("modulo4", "Ex. 8 e seus dois controles: CNN residual 128×128 com aumento, lote 64", m4_cnn_residual, 64,
             params_key="modulo4/ex8_params",
             trainings={"ex8": M4_CIFAR, "ex8_contraste_por_lote": M4_CIFAR, "ex8_outro_recorte": M4_CIFAR}),
    # modulo4 Ex. 9: features of the 20 000 images, once, and of a sample of 256
    Workload("modulo4", "Ex. 9: MobileNetV2 congelada, extração 128×128, lote 64", lambda k: _mobilenet(k, False), 64,
             train=False, params_key="modulo4/ex9_nontrainable_params", trainings={"ex9": (0, 20_256)}),
    Workload("modulo4", "Ex. 10: MobileNetV2 ajustada por inteiro 128×128, lote 64", lambda k: _mobilenet(k, True), 64,
             params_key="modulo4/ex10_total_params", trainings={"ex10": M4_CIFAR}),
    # trabalho2 Ex. 5 (train_base) and Ex. 7 (deep_run: three networks of the same size, plain,
    # dropout and L2)
    Workload("trabalho2", "Ex. 5: rede residual densa 256-128, lote 256", lambda k: t2_residual(k, (256, 128)), 256,
             logits=True, params_key="trabalho2/ex3_params", trainings={"ex5": T2}),
    Workload("trabalho2", "Ex. 7: três redes residuais densas 512-512-256-128, lote 256",
             lambda k: t2_residual(k, (512, 512, 256, 128)), 256, logits=True, params_key="trabalho2/ex7_v1_params",
             trainings={"v1": T2, "v2": T2, "v3": T2}),
    # controle_trabalho2 (on TensorFlow): Trabalho 2's networks again, the same counts (T2); its
    # rows are measured anew because the appendix runs on another backend than trabalho2
    Workload("controle_trabalho2", "Controle: rede residual densa 256-128 (ordem fixa e nova), lote 256",
             lambda k: t2_residual(k, (256, 128)), 256, logits=True, params_key="trabalho2/ex3_params", shuffled=True,
             trainings={"base_fixa": T2, "base_nova": T2}),
    Workload("controle_trabalho2", "Controle: redes residuais densas 512-512-256-128 (sem e com L2), lote 256",
             lambda k: t2_residual(k, (512, 512, 256, 128)), 256, logits=True, params_key="trabalho2/ex7_v1_params",
             shuffled=True, trainings={"maior_nova": T2, "l2_nova": T2}),
    # estudo_de_caso (treino_da_equipe, EPOCAS): the subfolder N_PASTA = 10 000 (treinos 1, 4, 5, 5
    # com 512 filtros, bn) or N_TREINO = 40 000 images (treinos 8 e 10); the epochs with early
    # stopping (treinos 4, 5, 5_512, 10) are those the committed cache entry ran (ec, epochs_run)
    Workload("estudo_de_caso", "Treino 1: CNN 32-64-128-128, lote 32",
             lambda k: ec_rede(k, (32, 64, 128, 128), (0, 0, 0, 0), False), 32,
             params_key="estudo_de_caso/treino1_parametros", shuffled=True, steps_per_execution=25,
             trainings={"treino1": ec("treino1", 10_000, 50)}),
    # treinos 4 e 5: the same layers (dropout 0,25 and L2 0,001 in treino 4, dropout 0,4–0,5 and
    # L2 0,01 in treino 5), so the same arithmetic; timed with treino 5's rates
    Workload("estudo_de_caso", "Treinos 4 e 5: CNN 3 blocos + BN + dropout + L2, lote 32",
             lambda k: ec_rede(k, (32, 64, 128), (0.4, 0.5, 0.5), True, l2=0.01, dropout_topo=0.5), 32,
             params_key="estudo_de_caso/treino5_parametros", shuffled=True, steps_per_execution=25,
             trainings={"treino4": ec("treino4", 10_000, 50), "treino5": ec("treino5", 10_000, 50)}),
    Workload("estudo_de_caso", "Treino 5 com 512 filtros: CNN 32-64-512 + BN + dropout + L2, lote 32",
             lambda k: ec_rede(k, (32, 64, 512), (0.4, 0.5, 0.5), True, l2=0.01, dropout_topo=0.5), 32,
             params_key="estudo_de_caso/treino5_512_parametros", shuffled=True, steps_per_execution=25,
             trainings={"treino5_512": ec("treino5_512", 10_000, 50)}),
    Workload("estudo_de_caso", "Treinos 8 e 10: CNN 4 blocos + BN + dropout + L2, lote 32",
             lambda k: ec_rede(k, (32, 64, 128, 256), (0.3, 0.4, 0.4, 0.4), True, l2=0.001, dropout_topo=0.5), 32,
             shuffled=True, steps_per_execution=25,
             trainings={"treino8": ec("treino8", 40_000, 70), "treino10": ec("treino10", 40_000, 100)}),
    Workload("estudo_de_caso", "Experimento extra: CNN do treino 1 + BN, lote 32",
             lambda k: ec_rede(k, (32, 64, 128, 128), (0, 0, 0, 0), True), 32,
             shuffled=True, steps_per_execution=25, trainings={"bn": ec("bn", 10_000, 50)}),
]


# --------------------------------------------------------------------------- counting
def forward_flops(model) -> int:
    """Floating-point operations of one image's forward pass through the convolution and
    dense layers (2 per multiply-add). Normalisation, pooling and activations are left out:
    they are a few per cent of the arithmetic, though not of the memory traffic."""
    total = 0
    for layer in model.layers:
        if getattr(layer, "layers", None):  # a model used as a layer
            total += forward_flops(layer)
            continue
        if getattr(layer, "base", None) is not None:  # a layer that calls a model (SempreEmModoDeTreino)
            total += forward_flops(layer.base)
            continue
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            continue
        cin, out = layer.input.shape[-1], layer.output.shape
        positions, cout = prod(out[1:-1]), out[-1]
        k = prod(getattr(layer, "kernel_size", (1,)))
        if kind == "Conv2D":
            total += 2 * positions * k * cin * cout
        elif kind == "DepthwiseConv2D":
            total += 2 * positions * k * cin * layer.depth_multiplier
        elif kind == "SeparableConv2D":
            total += 2 * positions * cin * layer.depth_multiplier * (k + cout)
        else:
            total += 2 * positions * cin * cout
    return total


def peak_gflops(seconds: float = 3.0) -> float:
    """Best float32 matrix-product rate NumPy reaches here (all cores): the practical peak."""
    import numpy as np

    n = 2048
    a = np.random.rand(n, n).astype("float32")
    b = np.random.rand(n, n).astype("float32")
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


# --------------------------------------------------------------------------- child
def _timed(run, x, y, batch: int, target_s: float) -> float:
    """Seconds per step of `run` in steady state, over about `target_s` seconds."""
    import numpy as np

    t = time.perf_counter()
    run(x, y)  # 2 steps: a first estimate of the step time
    step = (time.perf_counter() - t) / 2
    steps = int(min(400, max(4, target_s / max(step, 1e-4))))
    xs = np.resize(x, (batch * steps, *x.shape[1:]))
    ys = np.resize(y, (batch * steps, *y.shape[1:]))
    t = time.perf_counter()
    run(xs, ys)
    return (time.perf_counter() - t) / steps


def measure(variant: str, names: list[str], target_s: float) -> list[dict]:
    """Runs in a child process whose KERAS_BACKEND is already set for `variant`."""
    import numpy as np
    import keras

    import livro

    jit = variant.split("@")[0] in ("tensorflow+xla", "jax")
    livro.fused_batch_norm()  # as the chapters with normalisation on images do (TensorFlow only)
    rows = []
    for w in WORKLOADS:
        if names and not any(n in w.name or n == w.chapter for n in names):
            continue
        keras.utils.set_random_seed(0)
        t0 = time.perf_counter()
        model = w.build(keras)
        x = np.random.rand(w.batch * 2, *model.input_shape[1:]).astype("float32")
        out_dim = model.output_shape[-1]
        y = (np.random.rand(len(x), out_dim).astype("float32") if w.loss == "mse"
             else np.eye(out_dim, dtype="float32")[np.random.randint(0, out_dim, len(x))])
        fit = lambda xs, ys: model.fit(xs, ys, batch_size=w.batch, epochs=1, shuffle=False, verbose=0)  # noqa: E731
        if w.shuffled and keras.backend.backend() == "tensorflow":
            fit = lambda xs, ys: model.fit(livro.shuffled_batches(xs, ys, w.batch), epochs=1, verbose=0)  # noqa: E731
        predict = lambda xs, ys: model.predict(xs, batch_size=w.batch, verbose=0)  # noqa: E731
        if w.train:
            loss = keras.losses.CategoricalCrossentropy(from_logits=True) if w.logits else w.loss
            model.compile(optimizer=w.optimizer, loss=loss, jit_compile=jit,
                          steps_per_execution=w.steps_per_execution)
            fit(x, y)
        else:
            model.compile(jit_compile=jit)
        predict(x, y)
        setup = time.perf_counter() - t0
        train_step = _timed(fit, x, y, w.batch, target_s) if w.train else None
        forward_step = _timed(predict, x, y, w.batch, target_s / (3 if w.train else 1))
        forward = forward_flops(model)
        train_img_s = w.batch / train_step if train_step else None
        forward_img_s = w.batch / forward_step
        main_flops, main_rate = (3 * forward, train_img_s) if w.train else (forward, forward_img_s)
        full_s = (w.full_train / train_img_s if w.full_train else 0) + w.full_forward / forward_img_s
        rows.append(dict(
            chapter=w.chapter, workload=w.name, variant=variant, setup_s=round(setup, 2),
            step_ms=round(1e3 * (train_step or forward_step), 2),
            images_per_s=round(main_rate, 1), forward_images_per_s=round(forward_img_s, 1),
            gflop_per_image=float(f"{main_flops / 1e9:.4g}"), gflops=round(main_flops * main_rate / 1e9, 2),
            full_estimate_s=round(full_s, 1) if (w.full_train or w.full_forward) else None,
            full_gflop=round((3 * forward * w.full_train + forward * w.full_forward) / 1e9, 1),
        ))
        print(json.dumps(rows[-1]), flush=True)
    return rows


# --------------------------------------------------------------------------- parent
def run_variant(variant: str, names: list[str], target_s: float) -> tuple[list[dict], str | None]:
    backend = variant.split("@")[0].split("+")[0]
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    if backend == "jax" and importlib.util.find_spec("jax") is None:
        return [], "JAX não está instalado neste ambiente"
    one_core = min(os.sched_getaffinity(0))
    pin = (lambda: os.sched_setaffinity(0, {one_core})) if variant.endswith("@1") else None
    cmd = [sys.executable, __file__, "--child", variant, "--target", str(target_s), *names]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, preexec_fn=pin)
    rows = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    error = None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(sem mensagem)"])[-1]
        error = f"a variante {variant} falhou: {last}"
    return rows, error


def chapter_backend(chapter: str) -> str:
    """The backend the chapter's committed execution ran on (recorded by `make execute`,
    which chose it from the front matter); for a chapter not yet executed, the one its front
    matter names (`livro: {keras_backend: ...}`), else tensorflow."""
    from livro import book

    recorded = (book.read_results(chapter) or {}).get("provenance", {}).get("backend")
    if recorded:
        return recorded
    if not (book.BOOK / f"{chapter}.md").exists():
        return "tensorflow"
    return book.read_source(chapter).metadata.get("livro", {}).get("keras_backend", "tensorflow")


def table(report: dict, backend_of: Callable[[str], str] = chapter_backend) -> str:
    """Markdown: one line per workload, then per-chapter totals of the estimates.

    Speed, fraction of peak and the full-profile estimate are those of the backend the
    chapter runs on; the last columns give every variant's speed relative to TensorFlow."""
    peak = report["peak_gflops"]
    rows = report["rows"]
    base = {r["workload"]: r for r in rows if r["variant"] == "tensorflow"}
    others = [v for v in report["variants"] if v != "tensorflow"]
    header = lambda v: (f"duas faixas de {v}: vazão relativa" if v.endswith("@1")  # noqa: E731
                        else f"{v}: velocidade relativa")
    lines = ["| capítulo | carga | backend do capítulo | GFLOP por imagem | imagens/s | GFLOP/s "
             "| fração do pico | perfil full: min estimados | no pico: min "
             + "".join(f"| {header(v)} " for v in others) + "|",
             "|" + " --- |" * (9 + len(others))]
    minutes = lambda s: "—" if s is None else f"{s / 60:.1f}"  # noqa: E731
    totals: dict[str, list[float]] = {}
    one_core: dict[str, float | None] = {}  # chapter -> full-profile estimate on one core
    for w in WORKLOADS:
        tf_row = base.get(w.name)
        if tf_row is None:
            continue
        rel = []
        for v in others:
            o = next((x for x in rows if x["variant"] == v and x["workload"] == w.name), None)
            lanes = LANES if v.endswith("@1") else 1  # one-core lanes run side by side
            rel.append("—" if o is None else f"{lanes * tf_row['step_ms'] / o['step_ms']:.2f}×")
        chosen = backend_of(w.chapter)
        r1 = next((x for x in rows if x["variant"] == f"{chosen}@1" and x["workload"] == w.name), None)
        if r1 is None:  # not measured on one core: no lane estimate for this chapter
            one_core[w.chapter] = None
        elif one_core.get(w.chapter, 0.0) is not None:
            one_core[w.chapter] = one_core.get(w.chapter, 0.0) + (r1["full_estimate_s"] or 0.0)
        r = next((x for x in rows if x["variant"] == chosen and x["workload"] == w.name), None)
        if r is None:  # the chapter's backend was not measured in this run
            r, chosen = tf_row, f"{chosen} (não medido; tensorflow)"
        at_peak = r["full_gflop"] / peak if r["full_estimate_s"] is not None else None
        if at_peak is not None:
            t = totals.setdefault(w.chapter, [0.0, 0.0])
            t[0] += r["full_estimate_s"]
            t[1] += at_peak
        lines.append(f"| {w.chapter} | {w.name} | {chosen} | {r['gflop_per_image']:.4g} | {r['images_per_s']:.0f} "
                     f"| {r['gflops']:.1f} | {100 * r['gflops'] / peak:.0f} % | {minutes(r['full_estimate_s'])} "
                     f"| {minutes(at_peak)} " + "".join(f"| {x} " for x in rel) + "|")
    for chapter, (estimate, at_peak) in totals.items():
        lines.append(f"| **{chapter}** | **soma das cargas estimadas** | | | | | | **{minutes(estimate)}** "
                     f"| **{minutes(at_peak)}** " + "| " * len(others) + "|")
    estimate, at_peak = (sum(t[i] for t in totals.values()) for i in (0, 1))
    lines.append(f"| **total** | | | | | | | **{minutes(estimate)}** | **{minutes(at_peak)}** "
                 + "| " * len(others) + "|")
    if one_core and None not in one_core.values():
        lines.append(f"| **total em {LANES} faixas de 1 núcleo** (`make execute`) | | | | | | "
                     f"| **{minutes(lanes_makespan(list(one_core.values()), LANES))}** | "
                     + "| " * len(others) + "|")
    return "\n".join(lines)


def floor_seconds(report: dict, backend_of: Callable[[str], str] = chapter_backend) -> dict[str, float]:
    """Per chapter: the seconds its estimated full-profile workloads take at the measured peak
    (the FLOP floor; the "no pico" column of the table), on the backend it runs with."""
    floor: dict[str, float] = {}
    for w in WORKLOADS:
        r = next((x for x in report["rows"] if x["variant"] == backend_of(w.chapter) and x["workload"] == w.name),
                 None) or next((x for x in report["rows"] if x["variant"] == "tensorflow" and x["workload"] == w.name),
                               None)
        if r is not None and r["full_estimate_s"] is not None:
            floor[w.chapter] = floor.get(w.chapter, 0.0) + r["full_gflop"] / report["peak_gflops"]
    return floor


def lanes_makespan(seconds: list[float], lanes: int) -> float:
    """When the last of `lanes` lanes ends, each taking the next job (longest first) as it frees:
    the schedule of scripts/execute.py --jobs."""
    ends = [0.0] * lanes
    for s in sorted(seconds, reverse=True):
        ends[ends.index(min(ends))] += s
    return max(ends)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="only these chapters or workloads (substring of the name)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {VARIANTS}")
    p.add_argument("--target", type=float, default=6.0, help="seconds of timed steps per workload")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        measure(a.child, a.names, a.target)
        return 0

    variants = [v for v in a.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        print(f"bench: variantes desconhecidas {sorted(unknown)}; use {VARIANTS}.", file=sys.stderr)
        return 2
    started = time.perf_counter()
    peak = peak_gflops()
    print(f"pico prático (produto de matrizes float32, NumPy): {peak:.1f} GFLOP/s", flush=True)
    rows, notes = [], []
    for v in variants:
        got, error = run_variant(v, a.names, a.target)
        rows += got
        if error:
            notes.append(error)
        print(f"{v}: {len(got)} cargas medidas", flush=True)
    from execute import cpu_model, versions  # the same records as the chapters' provenance

    report = dict(date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  cpu=cpu_model(), versions=versions(), peak_gflops=round(peak, 1), variants=variants, rows=rows,
                  notes=notes, wall_seconds=round(time.perf_counter() - started, 1))
    report["table_md"] = table(report)
    print(report["table_md"])
    for n in notes:
        print("nota:", n)
    if a.names:
        print(f"(medição parcial: {a.out} não foi alterado)")
    else:
        a.out.parent.mkdir(exist_ok=True)
        a.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        print(f"gravado em {a.out.relative_to(ROOT) if a.out.is_relative_to(ROOT) else a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
