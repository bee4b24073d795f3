"""ONNX Runtime backend: numbers against torch, DFM layout and roles, providers, errors, the CUDA IO-binding path."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from dfl_vfx.errors import DflError
from dfl_vfx.runtime.model_file import inspect_model
from dfl_vfx.runtime.onnxruntime_backend import OnnxRuntimeBackend, session_providers

ATOL = 1e-4  # ORT vs torch, float32 (measured ~1e-7)


def _backend(path: Path, max_batch: int = 4, device: str = "cpu") -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(inspect_model(path), device=device, max_batch=max_batch, threads=1)


def _torch_swap(model, faces: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        rgb, mask_src, mask_dst = model.swap(torch.from_numpy(faces).permute(0, 3, 1, 2))
    return [rgb.permute(0, 2, 3, 1).numpy(), mask_src[:, 0].numpy(), mask_dst[:, 0].numpy()]


@pytest.mark.parametrize("count", [1, 3, 11])
def test_onnx_matches_torch_across_batch_splits(models, faces: np.ndarray, count: int) -> None:
    runtime = _backend(models.onnx, max_batch=4)
    out = runtime.predict(faces[:count])
    expected = _torch_swap(models.model, faces[:count])
    for got, want in zip([out.rgb, out.mask_src, out.mask_dst], expected, strict=True):
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    assert runtime.max_batch == 4 and runtime.providers == ["CPUExecutionProvider"]


def test_dfm_equals_its_session_run_by_hand(models, faces: np.ndarray) -> None:
    """NHWC BGR in, outputs unpacked by DFM position (dst mask, face, src mask), face back to RGB."""
    out = _backend(models.dfm).predict(faces[:5])
    session = ort.InferenceSession(str(models.dfm), providers=["CPUExecutionProvider"])
    dst_mask, face_bgr, src_mask = session.run(None, {"in_face:0": np.ascontiguousarray(faces[:5, ..., ::-1])})
    np.testing.assert_array_equal(out.rgb, face_bgr[..., ::-1])
    np.testing.assert_array_equal(out.mask_src, src_mask[..., 0])
    np.testing.assert_array_equal(out.mask_dst, dst_mask[..., 0])
    external = _backend(models.external_dfm).predict(faces[:5])
    np.testing.assert_array_equal(external.rgb, out.rgb)


def test_working_space_dfm_equals_our_onnx(models, faces: np.ndarray) -> None:
    """Same network, two layouts: the DFM path's BGR/NHWC handling returns what the NCHW RGB graph does."""
    dfm = _backend(models.dfm_working).predict(faces)
    ours = _backend(models.onnx).predict(faces)
    for name in ("rgb", "mask_src", "mask_dst"):
        np.testing.assert_allclose(getattr(dfm, name), getattr(ours, name), rtol=0, atol=1e-5)


def test_amp_dfm_gets_the_morph_value_and_roles_by_position(models) -> None:
    faces = np.random.default_rng(2).random((3, 16, 16, 3), dtype=np.float32)
    runtime = _backend(models.amp_dfm)
    assert runtime.morph == 0.75
    runtime.morph = 0.3
    out = runtime.predict(faces)
    np.testing.assert_allclose(out.rgb, faces * np.float32(0.3), rtol=1e-6, atol=0)
    np.testing.assert_array_equal(out.mask_src, faces[..., 0])  # src mask = the R channel (BGR index 2)
    np.testing.assert_array_equal(out.mask_dst, faces[..., 2])  # dst mask = the B channel (BGR index 0)


def test_predict_torch_on_cpu_equals_predict(models, faces: np.ndarray) -> None:
    runtime = _backend(models.dfm_working, max_batch=3)
    expected = runtime.predict(faces[:5])
    rgb, mask_src, mask_dst = runtime.predict_torch(torch.from_numpy(faces[:5]).permute(0, 3, 1, 2))
    assert (rgb.shape, mask_src.shape, mask_dst.shape) == ((5, 3, 64, 64), (5, 1, 64, 64), (5, 1, 64, 64))
    np.testing.assert_array_equal(rgb.permute(0, 2, 3, 1).numpy(), expected.rgb)
    np.testing.assert_array_equal(mask_src[:, 0].numpy(), expected.mask_src)
    np.testing.assert_array_equal(mask_dst[:, 0].numpy(), expected.mask_dst)


def test_wrong_face_size_names_the_model_resolution(models) -> None:
    with pytest.raises(DflError, match="shot010.onnx takes .* at its resolution 64"):
        _backend(models.onnx).predict(np.zeros((1, 32, 32, 3), np.float32))


def test_providers_best_first(models, tmp_path: Path) -> None:
    info = inspect_model(models.onnx)
    everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    providers = session_providers(info, "cuda:1", everything, 8, tensorrt_ep=True, cache_dir=tmp_path)
    (trt_name, trt), cuda, cpu = providers
    assert (trt_name, cuda, cpu) == ("TensorrtExecutionProvider", ("CUDAExecutionProvider", {"device_id": 1}),
                                     "CPUExecutionProvider")
    assert trt["device_id"] == 1 and trt["trt_engine_cache_path"] == str(tmp_path)
    assert (trt["trt_profile_min_shapes"], trt["trt_profile_opt_shapes"], trt["trt_profile_max_shapes"]) == (
        "face:1x3x64x64", "face:8x3x64x64", "face:8x3x64x64")
    dfm_trt = session_providers(inspect_model(models.dfm), "cuda:0", everything, 4, tensorrt_ep=True)[0][1]
    assert dfm_trt["trt_profile_max_shapes"] == "in_face:0:4x64x64x3"
    assert session_providers(info, "cuda:0", everything, 8)[0][0] == "CUDAExecutionProvider"  # TRT EP only if asked
    assert session_providers(info, "cpu", everything, 8) == ["CPUExecutionProvider"]


def test_cuda_device_without_a_gpu_build_is_a_dfl_error(models) -> None:
    info = inspect_model(models.onnx)
    with pytest.raises(DflError, match="--device cuda:0: this ONNX Runtime has no CUDA support"):
        session_providers(info, "cuda:0", ["AzureExecutionProvider", "CPUExecutionProvider"], 8)


def test_model_folder_is_refused(models) -> None:
    with pytest.raises(DflError, match="--backend onnxruntime cannot run the model folder"):
        OnnxRuntimeBackend(inspect_model(models.folder))


@pytest.mark.gpu("ort_cuda")
def test_cuda_io_binding_matches_cpu(models, faces: np.ndarray) -> None:
    for path in (models.onnx, models.dfm_working):
        expected = _backend(path).predict(faces)
        runtime = _backend(path, device="cuda:0")
        rgb, mask_src, mask_dst = runtime.predict_torch(torch.from_numpy(faces).permute(0, 3, 1, 2).cuda())
        assert rgb.is_cuda and mask_dst.is_cuda
        np.testing.assert_allclose(rgb.permute(0, 2, 3, 1).cpu().numpy(), expected.rgb, rtol=0, atol=1e-3)
        np.testing.assert_allclose(mask_src[:, 0].cpu().numpy(), expected.mask_src, rtol=0, atol=1e-3)
        np.testing.assert_allclose(mask_dst[:, 0].cpu().numpy(), expected.mask_dst, rtol=0, atol=1e-3)


@pytest.mark.parametrize("dfm", [False, True])
def test_outputs_at_another_resolution_are_a_dfl_error_when_run(half_size_model, dfm: bool) -> None:
    """Output sizes computed at run time escape inspection: the first batch's outputs name the model."""
    path = half_size_model(16, dfm=dfm, outputs="computed")
    runtime = _backend(path)
    faces = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    message = f"{path}: declares resolution 16, so its rgb output should be (N, {{}}), but it returned {{}}; " \
              "export the model again"
    with pytest.raises(DflError) as err:
        runtime.predict(faces)
    assert str(err.value) == message.format("16, 16, 3", "(2, 8, 8, 3)")
    with pytest.raises(DflError) as err:
        runtime.predict_torch(torch.from_numpy(faces).permute(0, 3, 1, 2))
    assert str(err.value) == message.format("3, 16, 16", "(2, 3, 8, 8)")
