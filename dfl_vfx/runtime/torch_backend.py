"""PyTorch backend: a trained model folder run directly, eager on the CPU, CUDA graphs on the GPU.

The network is loaded with :func:`dfl_vfx.models.checkpoint.load_model` and run as ``model.swap(dst)`` under
``torch.inference_mode``. On CUDA with ``cuda_graphs`` one graph is captured per batch size met (a static input
buffer copied into, then replayed), which removes the per-kernel launch cost that dominates small models.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dfl_vfx.errors import DflError
from dfl_vfx.runtime.base import Prediction, SwapRuntime, TorchPrediction, prediction_to_numpy
from dfl_vfx.runtime.model_file import KIND_CHECKPOINT, ModelInfo

WARMUP_RUNS = 2  # eager runs on a side stream before capture (cuDNN autotuning, lazy allocations)


class _CapturedSwap:
    """One CUDA graph of ``model.swap`` for a fixed batch shape."""

    def __init__(self, model: torch.nn.Module, example: Tensor) -> None:
        self.static_input = example.clone()
        side = torch.cuda.Stream(example.device)
        side.wait_stream(torch.cuda.current_stream(example.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                model.swap(self.static_input)
        torch.cuda.current_stream(example.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_outputs: TorchPrediction = model.swap(self.static_input)

    def __call__(self, faces: Tensor) -> TorchPrediction:
        self.static_input.copy_(faces)
        self.graph.replay()
        rgb, mask_src, mask_dst = (out.clone() for out in self.static_outputs)  # the next replay overwrites them
        return rgb, mask_src, mask_dst


class TorchBackend(SwapRuntime):
    """Run a trained model folder (``checkpoint.pt``) with PyTorch."""

    backend_name = "torch"

    def __init__(self, info: ModelInfo, device: str = "cpu", max_batch: int = 8, cuda_graphs: bool = True) -> None:
        super().__init__(info, device, max_batch)
        if info.kind != KIND_CHECKPOINT:
            raise DflError(
                f"--backend torch runs trained model folders only, not {info.path.name}; use --backend onnxruntime"
            )
        if self.is_cuda and not torch.cuda.is_available():
            raise DflError(f"--device {self.device}: PyTorch sees no CUDA GPU here; use --device cpu")
        from dfl_vfx.models.checkpoint import load_model

        model, _ = load_model(info.path)
        self.model = model.to(self.device).eval()
        self.cuda_graphs = cuda_graphs and self.is_cuda
        self._graphs: dict[int, _CapturedSwap] = {}

    def _run_batch(self, faces: np.ndarray) -> Prediction:
        nchw = torch.from_numpy(faces).to(self.device).permute(0, 3, 1, 2).contiguous()
        return prediction_to_numpy(self._run_batch_torch(nchw))

    def _run_batch_torch(self, faces: Tensor) -> TorchPrediction:
        with torch.inference_mode():
            if not self.cuda_graphs:
                return self.model.swap(faces)
            with torch.cuda.device(self.device_index):
                captured = self._graphs.get(len(faces))
                if captured is None:
                    captured = self._graphs[len(faces)] = _CapturedSwap(self.model, faces)
                return captured(faces)

    def _release_memory(self) -> None:
        self._graphs.clear()  # each graph holds its own memory pool
        super()._release_memory()
