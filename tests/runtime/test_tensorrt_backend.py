"""TensorRT backend: engine cache names everywhere; building and running only where TensorRT and a GPU exist."""

import numpy as np
import pytest
import torch

from dfl_vfx.errors import DflError
from dfl_vfx.runtime.model_file import inspect_model
from dfl_vfx.runtime.onnxruntime_backend import OnnxRuntimeBackend
from dfl_vfx.runtime.tensorrt_backend import (
    TensorRTBackend,
    engine_cache_name,
    onnx_precision,
    tensorrt_available,
    timing_cache_name,
)

SHA = "1A2B3C4D" + "e" * 56
needs_trt = pytest.mark.gpu("tensorrt")


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("/shots/shot010.onnx", SHA, "11.4.0.106", (9, 0), "fp16", 1, 8),
         "shot010.1a2b3c4d.trt11.4.sm90.fp16.b1-8.plan"),
        (("shot010_fp16.onnx", SHA, "10.13.2", "8.6", "fp32", 1, 32),
         "shot010_fp16.1a2b3c4d.trt10.13.sm86.fp32.b1-32.plan"),
        (("m.dfm", "abcdef0123", "11.4", 120, "fp32", 2, 2), "m.abcdef01.trt11.4.sm120.fp32.b2-2.plan"),
    ],
)
def test_engine_cache_name(args: tuple, name: str) -> None:
    assert engine_cache_name(*args) == name


@pytest.mark.parametrize(
    "args",
    [("m.onnx", SHA, "11.4", (9, 0), "int8", 1, 8), ("m.onnx", SHA, "11", (9, 0), "fp16", 1, 8),
     ("m.onnx", SHA, "11.4", (9, 0), "fp16", 4, 2), ("m.onnx", SHA, "11.4", "sm9x", "fp16", 1, 8)],
)
def test_engine_cache_name_refuses_bad_parts(args: tuple) -> None:
    with pytest.raises(ValueError):
        engine_cache_name(*args)


def test_timing_cache_name_is_shared_per_version_and_gpu() -> None:
    assert timing_cache_name("11.4.0.106", (9, 0)) == "timing.trt11.4.sm90.cache"


def test_onnx_precision(models, tmp_path) -> None:
    from dfl_vfx.export.onnx_export import ExportMetadata, export_onnx

    fp16 = export_onnx(models.model, tmp_path / "m_fp16.onnx", ExportMetadata.for_model(models.model, 1), fp16=True)
    assert (onnx_precision(models.onnx), onnx_precision(fp16)) == ("fp32", "fp16")


@pytest.mark.skipif(tensorrt_available(), reason="checks the message shown where TensorRT is not installed")
def test_missing_tensorrt_is_a_dfl_error(models) -> None:
    with pytest.raises(DflError, match="--backend tensorrt: TensorRT is not installed"):
        TensorRTBackend(inspect_model(models.onnx), "cuda:0", 4, cache_dir=None)


@needs_trt
def test_builds_caches_and_matches_onnxruntime(models, faces: np.ndarray, tmp_path) -> None:
    expected = OnnxRuntimeBackend(inspect_model(models.onnx), "cpu", threads=1).predict(faces)
    for path in (models.onnx, models.dfm_working):
        info = inspect_model(path)
        runtime = TensorRTBackend(info, "cuda:0", max_batch=4, cache_dir=tmp_path)
        out = runtime.predict(faces)
        for name in ("rgb", "mask_src", "mask_dst"):
            np.testing.assert_allclose(getattr(out, name), getattr(expected, name), rtol=0, atol=2e-3)
        assert runtime.engine_path is not None and runtime.engine_path.is_file()
        assert runtime.engine_path.name.startswith(f"{path.stem}.{info.sha256[:8]}.trt")
        assert runtime.engine_path.name.endswith(".fp32.b1-4.plan")
        built = runtime.engine_path.stat().st_mtime_ns
        again = TensorRTBackend(info, "cuda:0", max_batch=4, cache_dir=tmp_path)
        rgb, _, _ = again.predict_torch(torch.from_numpy(faces).permute(0, 3, 1, 2).cuda())
        assert again.engine_path == runtime.engine_path and runtime.engine_path.stat().st_mtime_ns == built
        np.testing.assert_allclose(rgb.permute(0, 2, 3, 1).cpu().numpy(), expected.rgb, rtol=0, atol=2e-3)
    assert len(list(tmp_path.glob("timing.trt*.cache"))) == 1
