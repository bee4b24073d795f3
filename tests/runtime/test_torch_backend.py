"""PyTorch backend: a model folder run eagerly on the CPU, CUDA graphs on the GPU."""

import numpy as np
import pytest
import torch

from dfl_vfx.errors import DflError
from dfl_vfx.runtime.model_file import inspect_model
from dfl_vfx.runtime.torch_backend import TorchBackend

needs_gpu = pytest.mark.gpu


def test_equals_model_swap_across_batches(models, faces: np.ndarray) -> None:
    runtime = TorchBackend(inspect_model(models.folder), "cpu", max_batch=2)
    out = runtime.predict(faces[:5])
    with torch.no_grad():
        rgb, mask_src, mask_dst = models.model.swap(torch.from_numpy(faces[:5]).permute(0, 3, 1, 2))
    np.testing.assert_allclose(out.rgb, rgb.permute(0, 2, 3, 1).numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(out.mask_src, mask_src[:, 0].numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(out.mask_dst, mask_dst[:, 0].numpy(), rtol=0, atol=1e-6)
    torch_out = runtime.predict_torch(torch.from_numpy(faces[:5]).permute(0, 3, 1, 2))
    np.testing.assert_array_equal(torch_out[0].permute(0, 2, 3, 1).numpy(), out.rgb)
    np.testing.assert_array_equal(torch_out[2][:, 0].numpy(), out.mask_dst)


def test_exported_files_are_refused(models) -> None:
    with pytest.raises(DflError, match="--backend torch runs trained model folders only, not shot010.onnx"):
        TorchBackend(inspect_model(models.onnx))


@needs_gpu
def test_cuda_graphs_match_eager(models, faces: np.ndarray) -> None:
    info = inspect_model(models.folder)
    eager = TorchBackend(info, "cpu", max_batch=4).predict(faces)
    graphed = TorchBackend(info, "cuda:0", max_batch=4, cuda_graphs=True)
    first = graphed.predict(faces)  # batches 4, 4, 3: two graphs
    second = graphed.predict(faces)  # replays
    assert sorted(graphed._graphs) == [3, 4]
    for out in (first, second):
        for name in ("rgb", "mask_src", "mask_dst"):
            np.testing.assert_allclose(getattr(out, name), getattr(eager, name), rtol=0, atol=1e-3)
    rgb, _, _ = graphed.predict_torch(torch.from_numpy(faces).permute(0, 3, 1, 2).cuda())
    assert rgb.is_cuda
    np.testing.assert_allclose(rgb.permute(0, 2, 3, 1).cpu().numpy(), eager.rgb, rtol=0, atol=1e-3)
