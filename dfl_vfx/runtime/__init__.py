"""Inference runtime: run a swap model (our ONNX, a DFM, or a trained model folder) on ONNX Runtime, TensorRT or
PyTorch behind one interface.

``load_runtime(path)`` inspects the model, picks the device and backend and returns a :class:`SwapRuntime`;
``runtime.predict(faces)`` takes (N, R, R, 3) float32 RGB faces in ``runtime.info.input_space`` and returns a
:class:`Prediction` (rgb, mask_src, mask_dst, channels last); ``predict_torch`` keeps tensors on the GPU.
"""

from dfl_vfx.runtime.base import Prediction, SwapRuntime
from dfl_vfx.runtime.model_file import ModelInfo, inspect_model
from dfl_vfx.runtime.onnxruntime_backend import OnnxRuntimeBackend
from dfl_vfx.runtime.registry import BACKENDS, available_backends, load_runtime
from dfl_vfx.runtime.tensorrt_backend import TensorRTBackend, engine_cache_name, tensorrt_available
from dfl_vfx.runtime.torch_backend import TorchBackend

__all__ = [
    "BACKENDS",
    "ModelInfo",
    "OnnxRuntimeBackend",
    "Prediction",
    "SwapRuntime",
    "TensorRTBackend",
    "TorchBackend",
    "available_backends",
    "engine_cache_name",
    "inspect_model",
    "load_runtime",
    "tensorrt_available",
]
