"""GPU executions: the pinned CUDA environment, the devices recorded, the same libraries."""
from __future__ import annotations

import sys

from livro import book

sys.path.insert(0, str(book.ROOT / "scripts"))
import execute  # noqa: E402  (scripts/execute.py)
import lock_gpu  # noqa: E402  (scripts/lock_gpu.py)


def test_gpu_lock_is_requirements_txt_with_cuda_builds():
    base, gpu = lock_gpu.pins(lock_gpu.BASE), lock_gpu.pins(lock_gpu.LOCK)
    tf_version = base.pop("tensorflow-cpu")
    changed = {name: (version, gpu.get(name)) for name, version in base.items() if gpu.get(name) != version}
    assert not changed, f"requirements-gpu.txt pins differ from requirements.txt (run scripts/lock_gpu.py): {changed}"
    assert "tensorflow-cpu" not in gpu and gpu["tensorflow"] == tf_version
    assert gpu["jax-cuda12-plugin"] == gpu["jax-cuda12-pjrt"] == base["jax"], "JAX's CUDA plugin must match jax"
    cuda = [name for name in gpu if name.startswith("nvidia-") and name.endswith("-cu12")]
    assert {"nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12"} <= set(cuda)


def test_tensorflow_and_tensorflow_cpu_of_one_version_are_the_same_library():
    cpu = {"python": "3.11.7", "tensorflow-cpu": "2.21.0", "jax": "0.10.2"}
    gpu = {"python": "3.11.7", "tensorflow": "2.21.0", "jax": "0.10.2"}
    assert execute.same_libraries(gpu, cpu)
    assert execute.same_libraries(cpu, gpu)
    assert not execute.same_libraries({"tensorflow": "2.21.0"}, {"tensorflow-cpu": "2.20.0"})
    assert not execute.same_libraries({"jax": "0.10.2"}, {"tensorflow": "2.21.0"})
    assert execute.same_libraries({"keras": "3.15.1"}, {"keras": "3.15.1", "jax": "0.10.2"})  # installed since


def test_the_gpu_recorded_is_the_one_the_chapters_backend_uses():
    devices = {"tensorflow": ["CPU: /physical_device:CPU:0", "GPU: NVIDIA H200"], "jax": ["cpu: cpu"]}
    assert execute.used_gpu(devices, "tensorflow") == "NVIDIA H200"
    assert execute.used_gpu(devices, "jax") is None  # a CPU-only jaxlib beside a CUDA TensorFlow
    assert execute.used_gpu({"error": "x"}, "jax") is None


def test_frameworks_are_asked_for_their_devices():
    devices = execute.framework_devices()
    assert set(devices) == {"tensorflow", "jax"}, devices
    assert devices["tensorflow"][0].startswith("CPU") and devices["jax"][0].startswith("cpu"), devices
