"""The training cache: ``livro.treino(nome, funcao, *args)`` runs a training once.

A chapter wraps each long training in a function that builds, trains and evaluates the
model and returns what the chapter uses afterwards (histories, metrics, predictions), then
calls ``livro.treino("treino1", treino1)``. During ``make execute`` the result is stored in
``results/treinos/<chapter>/<nome>.json`` (plain JSON; arrays in a ``.npz`` beside it, read
without pickle), under a key that covers everything the training computes from:

* the function's source, and recursively the source of every function, class and value of
  the chapter (or of ``livro``) that it refers to — builders, the training loop, callbacks,
  hyper-parameters, data arrays (hashed by content);
* its arguments (hashed the same way);
* the Keras backend, the library versions the execution records, Keras' float type, the
  fused batch norm switch and the number of threads the frameworks use.

The next execution with the same key loads the entry instead of training; any other key
trains again. An entry carries its own provenance (date, seconds, cores, CPU, versions) and
a checksum of its content: a truncated, edited or half-written entry is reported in one
sentence and trained again. Outside ``make execute`` (a student running the notebook) there
is no cache: the function just runs.

Environment (set by ``scripts/execute.py``):

``LIVRO_TREINOS``      the chapter's cache folder; unset: no cache.
``LIVRO_TREINO_RUN``   with ``--force``, an id of this run: only entries written by this run
                       count, everything else trains again.
``LIVRO_TREINO_FILL``  "1" in a helper process that trains a chapter's pending trainings in
                       another lane: a training that another process is running is skipped
                       (``TreinoEmOutroProcesso``) instead of waited for. A comma-separated
                       list of names instead of "1": only those are taken, the others skipped
                       (to hand a long training to the helper lane).
``LIVRO_TREINO_LOAD_ONLY`` "1": never train; a training without a matching entry stops the
                       execution with one sentence (to check that an execution will only load).
"""
from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import inspect
import json
import math
import os
import platform
import sys
import textwrap
import time
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np

CACHE_ENV = "LIVRO_TREINOS"
RUN_ENV = "LIVRO_TREINO_RUN"
FILL_ENV = "LIVRO_TREINO_FILL"
LOAD_ONLY_ENV = "LIVRO_TREINO_LOAD_ONLY"
FORMAT = 1  # bump when the entry layout changes


class TreinoEmOutroProcesso(RuntimeError):
    """In a fill process: another process is running this training right now."""


# --- the key -----------------------------------------------------------------------------


def _project_module(name: str | None) -> bool:
    """Code whose source belongs in the key: the chapter (__main__) and the book's package."""
    return bool(name) and (name == "__main__" or name == "livro" or name.startswith("livro."))


def _array_digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return f"ndarray {a.dtype.str} {a.shape} {hashlib.sha256(a.view(np.uint8).reshape(-1)).hexdigest()}"


def _source(fn) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):  # no source (e.g. built dynamically): use the bytecode
        return _code_text(fn.__code__)


def _code_text(code: types.CodeType) -> str:
    consts = [(_code_text(c) if isinstance(c, types.CodeType) else repr(c)) for c in code.co_consts]
    return f"code {code.co_code.hex()} {code.co_names} {code.co_varnames} {consts}"


def _names(code: types.CodeType) -> list[str]:
    """Global and attribute names used by a code object and the code nested in it."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _names(const)
    return names


class _Fingerprint:
    """A text that changes whenever anything a training computes from changes."""

    def __init__(self):
        self.parts: list[str] = []
        self.seen: dict[int, str] = {}

    def value(self, v, where: str) -> str:
        if v is None or isinstance(v, (bool, int, str, bytes)):
            return repr(v)
        if isinstance(v, float):
            return repr(v) if not math.isnan(v) else "nan"
        if isinstance(v, np.generic):
            return f"{type(v).__name__}({v!r})"
        if isinstance(v, np.ndarray):
            return _array_digest(v)
        if isinstance(v, (list, tuple)):
            return f"{type(v).__name__}[" + ", ".join(self.value(x, where) for x in v) + "]"
        if isinstance(v, (set, frozenset)):
            return "set{" + ", ".join(sorted(self.value(x, where) for x in v)) + "}"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{self.value(k, where)}: {self.value(x, where)}"
                                   for k, x in sorted(v.items(), key=lambda kv: repr(kv[0]))) + "}"
        if isinstance(v, types.ModuleType):
            return f"module {v.__name__}"
        if isinstance(v, (types.FunctionType, type)):
            return self.code(v)
        if hasattr(v, "get_config") and hasattr(v, "get_weights"):  # a Keras layer or model
            return self._keras(v)
        if _project_module(type(v).__module__):  # an instance of a chapter class
            return f"instance {self.code(type(v))} {self.value(vars(v), where)}"
        if isinstance(v, types.MethodType):
            return f"method {self.code(v.__func__)} of {self.value(v.__self__, where)}"
        if callable(v):  # a library's function object (np.mean, keras.ops.relu, ...)
            owner = getattr(v, "__module__", None) or type(v).__module__
            return f"library {owner}.{getattr(v, '__qualname__', type(v).__qualname__)}"
        text = repr(v)
        if " at 0x" in text or len(text) > 10_000:
            raise TypeError(
                f"O treino usa {where}, um {type(v).__module__}.{type(v).__qualname__} que o cache "
                f"não sabe identificar; passe-o como argumento de um tipo simples (número, texto, "
                f"array) ou crie-o dentro da função de treino."
            )
        return f"{type(v).__module__}.{type(v).__qualname__} {text}"

    def _keras(self, obj) -> str:
        weights = hashlib.sha256()
        for w in obj.get_weights():
            weights.update(_array_digest(np.asarray(w)).encode())
        try:
            config = json.dumps(obj.get_config(), sort_keys=True, default=repr)
        except Exception:  # a subclass without get_config: its class's source stands for it
            config = self.code(type(obj))
        return f"keras {type(obj).__qualname__} {hashlib.sha256(config.encode()).hexdigest()} {weights.hexdigest()}"

    def code(self, obj) -> str:
        """Functions and classes: of the chapter or the book, by source and what they use;
        of a library, by name (the library's version is in the key)."""
        module = getattr(obj, "__module__", None)
        name = f"{module}.{obj.__qualname__}"
        if not _project_module(module):
            return f"library {name}"
        if id(obj) in self.seen:
            return f"ref {name}"
        self.seen[id(obj)] = name
        if isinstance(obj, type):
            members = [f"{k}: {self.value(v, f'{name}.{k}')}" for k, v in sorted(vars(obj).items())
                       if not (k.startswith("__") and k.endswith("__")) or k in ("__init__", "__call__")]
            bases = [self.code(b) if _project_module(b.__module__) else f"library {b.__module__}.{b.__qualname__}"
                     for b in obj.__bases__]
            self.parts.append(f"class {name} bases={bases} " + "; ".join(members))
            return f"class {name}"
        fn = obj
        text = [f"def {name}", _source(fn)]
        if fn.__defaults__:
            text.append("defaults " + self.value(fn.__defaults__, f"defaults of {name}"))
        if fn.__kwdefaults__:
            text.append("kwdefaults " + self.value(fn.__kwdefaults__, f"defaults of {name}"))
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                text.append(f"closure {var} = {self.value(cell.cell_contents, var)}")
            except ValueError:  # empty cell
                pass
        names = _names(fn.__code__)
        for ref in sorted(set(names)):
            if ref in fn.__globals__:
                target = fn.__globals__[ref]
                text.append(f"global {ref} = {self.value(target, f'a variável global {ref!r}')}")
                if isinstance(target, types.ModuleType) and _project_module(target.__name__):
                    # livro.shuffled_batches etc.: the book's own helpers the function calls
                    for attr in sorted(set(names)):
                        member = getattr(target, attr, None)
                        if isinstance(member, (types.FunctionType, type)):
                            text.append(f"member {ref}.{attr} = {self.code(member)}")
        self.parts.append("\n".join(text))
        return f"function {name}"


def environment() -> dict:
    """What every training depends on besides its code and data."""
    import keras

    bn = keras.layers.BatchNormalization.call
    return {
        "backend": keras.backend.backend(),
        "floatx": keras.config.floatx(),
        "versions": library_versions(),
        "python": platform.python_version(),
        # livro.fused_batch_norm() replaces BatchNormalization's training step: its source counts
        "fused_batch_norm": _fused_source() if getattr(bn, "fused", False) else False,
        "threads": threads(),
    }


def _fused_source() -> str:
    import livro

    return hashlib.sha256(inspect.getsource(livro.fused_batch_norm).encode()).hexdigest()


# The libraries a training computes with. TensorFlow is one library whichever wheel brought
# it (tensorflow, tensorflow-cpu, tensorflow[and-cuda]).
TRAINING_LIBRARIES = {"keras": ["keras"], "tensorflow": ["tensorflow", "tensorflow-cpu"],
                      "jax": ["jax"], "jaxlib": ["jaxlib"], "numpy": ["numpy"]}


def library_versions() -> dict:
    from importlib import metadata

    found = {}
    for library, distributions in TRAINING_LIBRARIES.items():
        for dist in distributions:
            try:
                found[library] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                pass
    return found


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Where a training ran: CPU model, cores this process may use, and the GPUs TensorFlow sees."""
    cpu = cpu_name()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = []
    if "tensorflow" in sys.modules:
        gpus = [d.name for d in sys.modules["tensorflow"].config.list_physical_devices("GPU")]
    return {"cpu": cpu, "cores_used": cores, "gpu": ", ".join(gpus) or None}


def threads() -> dict:
    """How many threads the frameworks compute with (set by scripts/execute.py)."""
    return {name: os.environ.get(name) for name in
            ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")}


def key(fn, args: tuple, kwargs: dict) -> tuple[str, dict]:
    """The cache key of ``fn(*args, **kwargs)`` and the environment part of it."""
    fp = _Fingerprint()
    fp.code(fn)
    call = fp.value((args, kwargs), "os argumentos do treino")
    env = environment()
    text = json.dumps({"format": FORMAT, "code": fp.parts, "call": call, "env": env}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest(), env


# --- the stored value --------------------------------------------------------------------


def _encode(value, arrays: dict):
    """Plain JSON for ``value``; numpy arrays go to ``arrays`` and leave a reference."""
    if isinstance(value, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"__array__": name}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"As chaves do resultado de um treino devem ser textos, não {bad[0]!r}.")
        return {k: _encode(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, arrays) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"Um treino deve devolver números, textos, listas, dicionários ou arrays, não "
        f"{type(value).__module__}.{type(value).__qualname__} (um modelo inteiro não vai para o cache: "
        f"devolva o histórico, as métricas e as previsões que o capítulo usa)."
    )


def _decode(value, arrays):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def _content_digest(payload, arrays: dict) -> str:
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
    for name in sorted(arrays):
        digest.update(f"{name} {_array_digest(np.asarray(arrays[name]))}".encode())
    return digest.hexdigest()


class Corrupt(Exception):
    pass


def read_entry(path: Path) -> tuple[dict, object]:
    """(entry metadata, decoded value) of a stored training; ``Corrupt`` if it does not verify."""
    try:
        entry = json.loads(path.read_text())
        arrays = {}
        npz = path.with_suffix(".npz")
        if entry.get("arrays"):
            with np.load(npz, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in entry["arrays"]}
        if _content_digest(entry["value"], arrays) != entry["content_sha256"]:
            raise Corrupt("o conteúdo não confere com a soma de verificação gravada")
        return entry, _decode(entry["value"], arrays)
    except Corrupt:
        raise
    except Exception as error:  # truncated JSON, missing or broken .npz, missing field
        raise Corrupt(f"{type(error).__name__}: {error}") from None


def verify(path: Path, expected_key: str | None = None) -> str | None:
    """None if the entry at ``path`` is whole (and has ``expected_key``); else why not."""
    if not path.is_file():
        return "não existe"
    try:
        entry, _ = read_entry(path)
    except Corrupt as error:
        return f"está corrompida ({error})"
    if expected_key is not None and entry.get("key") != expected_key:
        return "foi gravada para outra chave"
    return None


def _write_entry(path: Path, name: str, cache_key: str, env: dict, value, seconds: float) -> dict:
    arrays: dict = {}
    payload = _encode(value, arrays)
    entry = {
        "format": FORMAT,
        "name": name,
        "key": cache_key,
        "environment": env,
        "provenance": {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(seconds, 1),
            "run": os.environ.get(RUN_ENV),
            **machine(),
        },
        "arrays": sorted(arrays),
        "content_sha256": _content_digest(payload, arrays),
        "value": payload,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".{os.getpid()}.tmp"
    if arrays:  # the arrays first, the JSON (which names their checksum) last
        tmp_npz = path.with_name(path.stem + suffix + ".npz")
        np.savez(tmp_npz, **arrays)
        tmp_npz.replace(path.with_suffix(".npz"))
    tmp = path.with_name(path.name + suffix)
    tmp.write_text(json.dumps(entry, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return entry


@contextmanager
def _lock(path: Path, wait: bool):
    """An exclusive lock on one training's entry, released when the process ends or dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.stem}.lock")
    with open(lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise TreinoEmOutroProcesso(path.stem) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def held(path: Path) -> bool:
    """Is some process training this entry now (holding its lock)?"""
    try:
        with _lock(path, wait=False):
            return False
    except TreinoEmOutroProcesso:
        return True


# --- the call the chapters make ----------------------------------------------------------


def _when(entry: dict) -> str:
    p = entry["provenance"]
    cpu = p.get("gpu") or p.get("cpu") or "máquina não registrada"
    cores = p.get("cores_used")
    where = f"{cores} núcleo{'s' if cores and cores > 1 else ''} de {cpu}" if cores else cpu
    date = p["date"].replace("T", " ").replace("+00:00", " UTC")
    return f"treinado em {date}, em {p['seconds']:.0f} s, com {where}"


def treino(nome: str, funcao, *args, **kwargs):
    """``funcao(*args, **kwargs)``, or its stored result when nothing it depends on changed.

    ``funcao`` builds, trains and evaluates a model and returns what the chapter uses next
    (numbers, texts, lists, dicts, numpy arrays). The value returned is the same whether
    trained now or loaded: it always goes through the stored form (tuples become lists,
    numpy scalars become Python numbers).
    """
    from livro import update_results

    folder = os.environ.get(CACHE_ENV)
    if not folder:  # a reader's own run: no cache, just train
        arrays: dict = {}
        return _decode(_encode(funcao(*args, **kwargs), arrays), arrays)

    fill = os.environ.get(FILL_ENV)
    if fill and fill != "1" and nome not in fill.split(","):  # a helper lane told which to take
        raise TreinoEmOutroProcesso(f"{nome}: este processo só treina {fill}")
    started = time.perf_counter()
    cache_key, env = key(funcao, args, kwargs)
    path = Path(folder) / f"{nome}.json"
    run = os.environ.get(RUN_ENV)
    with _lock(path, wait=not fill):
        loaded = None
        if path.exists():
            try:
                entry, value = read_entry(path)
                if entry.get("key") == cache_key and (not run or entry["provenance"].get("run") == run):
                    loaded = entry, value
            except Corrupt as error:
                print(f"Treino «{nome}»: a entrada {path.name} do cache está corrompida ({error}); "
                      f"treinando de novo.")
        if loaded is not None:
            entry, value = loaded
            print(f"Treino «{nome}»: carregado do cache ({_when(entry)}).")
        elif os.environ.get(LOAD_ONLY_ENV) == "1":
            why = "não está no cache" if not path.exists() else "está no cache com outra chave (algo de que ele depende mudou)"
            raise RuntimeError(f"O treino «{nome}» {why} e {LOAD_ONLY_ENV}=1 proíbe treinar: {path}.")
        else:
            result = funcao(*args, **kwargs)
            seconds = time.perf_counter() - started
            entry = _write_entry(path, nome, cache_key, env, result, seconds)
            entry, value = read_entry(path)
            print(f"Treino «{nome}»: {_when(entry)}; guardado no cache.")
    update_results("treinos", nome, {
        "key": cache_key,
        "loaded": loaded is not None,
        "trained": entry["provenance"]["date"],
        "seconds": entry["provenance"]["seconds"],
        # how long this call took here (training, waiting for another lane, or loading): with
        # "seconds", it gives how long the chapter takes when every training runs (book.reader_seconds)
        "call_seconds": round(time.perf_counter() - started, 1),
    })
    return value


# --- for scripts/execute.py and the up-to-date check --------------------------------------


def folder(chapter: str, results_dir: Path) -> Path:
    """Where a chapter's trainings are stored, beside its results file."""
    return results_dir / "treinos" / chapter


def stale_trainings(chapter: str, results: dict, results_dir: Path) -> list[str]:
    """One sentence for each training the chapter's execution used whose entry is now missing,
    damaged or stored for another key: the chapter must then be executed again."""
    problems = []
    for name, used in (results.get("treinos") or {}).items():
        path = folder(chapter, results_dir) / f"{name}.json"
        why = verify(path, used.get("key"))
        if why:
            problems.append(f"o treino «{name}» de {chapter} ({path.relative_to(results_dir.parent)}) {why}")
    return problems


def summary(results: dict) -> str:
    """What an execution did with its trainings, for the console."""
    used = results.get("treinos") or {}
    if not used:
        return "no cached trainings"
    loaded = [n for n, u in used.items() if u.get("loaded")]
    trained = [n for n, u in used.items() if not u.get("loaded")]
    parts = []
    if trained:
        parts.append(f"trained {len(trained)} ({', '.join(trained)})")
    if loaded:
        parts.append(f"loaded {len(loaded)} from the training cache ({', '.join(loaded)})")
    return "; ".join(parts)
