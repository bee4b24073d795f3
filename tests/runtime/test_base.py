"""SwapRuntime batching, face-size checks and the GPU out-of-memory fallback, with a fake backend."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from dfl_vfx.errors import DflError
from dfl_vfx.runtime.base import Prediction, SwapRuntime, TorchPrediction, is_out_of_memory, parse_device
from dfl_vfx.runtime.model_file import ModelInfo

RES = 4
INFO = ModelInfo(path=Path("/shots/fake.onnx"), kind="dfl_vfx.swap", resolution=RES, face_type="f",
                 input_space="working", layout="nchw_rgb", input_name="face",
                 output_names=("rgb", "mask_src", "mask_dst"), needs_morph=False, sha256="0" * 64)


class FakeBackend(SwapRuntime):
    """rgb = 2 * face, mask_src = red, mask_dst = green; batches larger than ``fits`` run out of GPU memory."""

    backend_name = "fake"

    def __init__(self, max_batch: int, fits: int, error: Exception) -> None:
        super().__init__(INFO, "cpu", max_batch)
        self.fits, self.error, self.calls = fits, error, []

    def _run_batch(self, faces: np.ndarray) -> Prediction:
        self.calls.append(len(faces))
        if len(faces) > self.fits:
            raise self.error
        return Prediction(2 * faces, faces[..., 0].copy(), faces[..., 1].copy())

    def _run_batch_torch(self, faces: Tensor) -> TorchPrediction:
        self.calls.append(len(faces))
        if len(faces) > self.fits:
            raise self.error
        return 2 * faces, faces[:, 0:1], faces[:, 1:2]


def _faces(n: int) -> np.ndarray:
    return np.random.default_rng(n).random((n, RES, RES, 3), dtype=np.float32)


def test_splits_into_max_batch_and_keeps_order() -> None:
    runtime = FakeBackend(max_batch=4, fits=4, error=RuntimeError("unused"))
    faces = _faces(11)
    out = runtime.predict(faces)
    assert runtime.calls == [4, 4, 3]
    np.testing.assert_array_equal(out.rgb, 2 * faces)
    np.testing.assert_array_equal(out.mask_src, faces[..., 0])
    np.testing.assert_array_equal(out.mask_dst, faces[..., 1])
    assert out.rgb.shape == (11, RES, RES, 3) and out.mask_src.shape == (11, RES, RES)


OOM_ERRORS = [
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer"),
    RuntimeError("CUDNN failure 4: CUDNN_STATUS_ALLOC_FAILED"),
]


@pytest.mark.parametrize("error", OOM_ERRORS, ids=["torch", "onnxruntime", "cudnn"])
def test_out_of_memory_halves_the_batch_and_finishes(error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    runtime = FakeBackend(max_batch=8, fits=2, error=error)
    faces = _faces(11)
    with caplog.at_level(logging.WARNING, logger="dfl_vfx.runtime.base"):
        out = runtime.predict(faces)
    np.testing.assert_array_equal(out.rgb, 2 * faces)
    assert runtime.max_batch == 2
    assert runtime.calls == [8, 4, 2, 2, 2, 2, 2, 1]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["GPU out of memory running fake.onnx at batch 8; retrying at batch 4",
                        "GPU out of memory running fake.onnx at batch 4; retrying at batch 2"]


def test_out_of_memory_in_predict_torch_also_falls_back() -> None:
    runtime = FakeBackend(max_batch=8, fits=3, error=OOM_ERRORS[0])
    faces = torch.from_numpy(_faces(7)).permute(0, 3, 1, 2)
    rgb, mask_src, mask_dst = runtime.predict_torch(faces)
    assert runtime.calls == [7, 3, 3, 1]  # a short first batch halves from its own size
    assert runtime.max_batch == 3
    assert torch.equal(rgb, 2 * faces) and torch.equal(mask_dst, faces[:, 1:2])
    assert mask_src.shape == (7, 1, RES, RES)


def test_out_of_memory_at_batch_one_is_a_dfl_error() -> None:
    runtime = FakeBackend(max_batch=4, fits=0, error=OOM_ERRORS[1])
    with pytest.raises(DflError, match="GPU out of memory running fake.onnx at batch 1: free GPU memory or use "
                                       "--backend onnxruntime --device cpu"):
        runtime.predict(_faces(3))
    assert runtime.calls == [3, 1]


def test_other_errors_are_not_retried() -> None:
    runtime = FakeBackend(max_batch=4, fits=0, error=ValueError("bad graph"))
    with pytest.raises(ValueError, match="bad graph"):
        runtime.predict(_faces(3))
    assert runtime.calls == [3] and runtime.max_batch == 4


def test_wrong_face_size_names_the_resolution() -> None:
    runtime = FakeBackend(max_batch=4, fits=4, error=RuntimeError("unused"))
    with pytest.raises(DflError, match=r"fake.onnx takes \(N, 4, 4, 3\) RGB faces at its resolution 4"):
        runtime.predict(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(DflError, match="resolution 4"):
        runtime.predict(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(DflError, match=r"\(N, 3, 4, 4\) faces at its resolution 4"):
        runtime.predict_torch(torch.zeros(1, 4, 4, 3))


def test_no_faces_give_empty_outputs() -> None:
    runtime = FakeBackend(max_batch=4, fits=4, error=RuntimeError("unused"))
    out = runtime.predict(np.zeros((0, RES, RES, 3), np.float32))
    assert (out.rgb.shape, out.mask_src.shape, out.mask_dst.shape) == ((0, RES, RES, 3), (0, RES, RES), (0, RES, RES))
    assert [tuple(t.shape) for t in runtime.predict_torch(torch.zeros(0, 3, RES, RES))] == [
        (0, 3, RES, RES), (0, 1, RES, RES), (0, 1, RES, RES)]
    assert runtime.calls == []


def test_is_out_of_memory() -> None:
    assert all(is_out_of_memory(error) for error in OOM_ERRORS)
    assert not is_out_of_memory(RuntimeError("Invalid input name: face"))


@pytest.mark.parametrize(("text", "parsed"), [("cpu", ("cpu", 0)), ("cuda", ("cuda", 0)), ("CUDA:1", ("cuda", 1))])
def test_parse_device(text: str, parsed: tuple[str, int]) -> None:
    assert parse_device(text) == parsed


@pytest.mark.parametrize("text", ["gpu", "cuda:x", "cpu:0", "mps"])
def test_parse_device_refuses_unknown_devices(text: str) -> None:
    with pytest.raises(DflError, match=f"--device '{text}' is unknown"):
        parse_device(text)
