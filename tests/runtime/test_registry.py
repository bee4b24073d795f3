"""load_runtime: automatic device and backend choices, and explicit choices that cannot work."""

from pathlib import Path

import numpy as np
import pytest
import torch

from dfl_vfx.errors import DflError
from dfl_vfx.runtime.onnxruntime_backend import OnnxRuntimeBackend
from dfl_vfx.runtime.registry import BACKENDS, available_backends, load_runtime
from dfl_vfx.runtime.tensorrt_backend import TensorRTBackend, tensorrt_available
from dfl_vfx.runtime.torch_backend import TorchBackend

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the automatic choices of a machine without GPU")


def test_backends_table() -> None:
    assert BACKENDS == {"onnxruntime": OnnxRuntimeBackend, "tensorrt": TensorRTBackend, "torch": TorchBackend}
    assert {"onnxruntime", "torch"} <= set(available_backends())
    assert ("tensorrt" in available_backends()) == (tensorrt_available() and torch.cuda.is_available())


@cpu_only
def test_auto_on_a_cpu_machine(models) -> None:
    for path in (models.onnx, models.dfm, models.amp_dfm):
        runtime = load_runtime(path, threads=1)
        assert (runtime.backend_name, runtime.device, type(runtime)) == ("onnxruntime", "cpu", OnnxRuntimeBackend)
        assert runtime.info.path == path
    folder = load_runtime(models.folder, max_batch=3)
    assert (folder.backend_name, folder.device, folder.max_batch) == ("torch", "cpu", 3)


def test_explicit_choices_run(models, faces: np.ndarray) -> None:
    via_ort = load_runtime(str(models.onnx), backend="onnxruntime", device="cpu", threads=1).predict(faces[:2])
    via_torch = load_runtime(models.folder, backend="torch", device="cpu").predict(faces[:2])
    np.testing.assert_allclose(via_ort.rgb, via_torch.rgb, rtol=0, atol=1e-4)


def test_unknown_backend_and_device(models) -> None:
    with pytest.raises(DflError, match="--backend 'onnx' is unknown; use auto, onnxruntime, tensorrt, torch"):
        load_runtime(models.onnx, backend="onnx")
    with pytest.raises(DflError, match="--device 'gpu' is unknown"):
        load_runtime(models.onnx, device="gpu")


def test_backend_that_cannot_run_the_model(models) -> None:
    with pytest.raises(DflError, match="--backend onnxruntime cannot run the model folder .*dfl-vfx export"):
        load_runtime(models.folder, backend="onnxruntime", device="cpu")
    with pytest.raises(DflError, match="--backend torch runs trained model folders only, not shot010.dfm"):
        load_runtime(models.dfm, backend="torch", device="cpu")


@pytest.mark.skipif(tensorrt_available(), reason="checks the message shown where TensorRT is not installed")
def test_tensorrt_not_installed(models) -> None:
    with pytest.raises(DflError, match="--backend tensorrt: TensorRT is not installed"):
        load_runtime(models.onnx, backend="tensorrt")


@cpu_only
def test_cuda_without_a_gpu(models) -> None:
    with pytest.raises(DflError, match="--device cuda:0: PyTorch sees no CUDA GPU on this machine; use --device cpu"):
        load_runtime(models.onnx, device="cuda:0")


def test_corrupt_model_through_load_runtime(tmp_path: Path) -> None:
    path = tmp_path / "shot020.onnx"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(DflError, match="shot020.onnx"):
        load_runtime(path)
