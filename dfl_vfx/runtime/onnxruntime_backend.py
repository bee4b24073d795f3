"""ONNX Runtime backend: our ONNX exports and DFMs on the CPU, CUDA or ONNX Runtime's TensorRT provider.

Providers are chosen best first from those this ONNX Runtime build has (hosts reference 3.2): TensorRT (only when
asked, with its engine and timing caches under ``cache_dir`` and a batch profile 1 / max_batch / max_batch), CUDA,
then the CPU. DFMs take NHWC BGR faces; the conversion happens here, so callers always see NCHW or NHWC RGB. On a
CUDA device :meth:`predict_torch` binds the caller's CUDA tensors directly (IO binding), with no host round trip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor

from dfl_vfx.errors import DflError
from dfl_vfx.runtime.base import (
    Prediction,
    SwapRuntime,
    TorchPrediction,
    from_model_layout,
    model_input_shape,
    model_output_shapes,
    prediction_to_numpy,
    to_model_layout,
)
from dfl_vfx.runtime.model_file import KIND_CHECKPOINT, ModelInfo

TENSORRT_EP = "TensorrtExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
TRT_WORKSPACE_BYTES = 1 << 30

_ORT_TYPES = {"tensor(float)": (np.float32, torch.float32), "tensor(float16)": (np.float16, torch.float16)}

Provider = str | tuple[str, dict[str, object]]


def session_providers(
    info: ModelInfo,
    device: str,
    available: list[str],
    max_batch: int,
    tensorrt_ep: bool = False,
    cache_dir: Path | None = None,
) -> list[Provider]:
    """ONNX Runtime providers for ``device``, best first, limited to those in ``available``.

    ``device`` is ``"cpu"`` or ``"cuda:N"``. A CUDA device with neither the CUDA nor the TensorRT provider
    available is a DflError (the CPU build of onnxruntime is installed).
    """
    if device == "cpu":
        return [CPU_EP]
    index = int(device.partition(":")[2] or 0)
    providers: list[Provider] = []
    if tensorrt_ep and TENSORRT_EP in available:
        providers.append((TENSORRT_EP, _tensorrt_ep_options(info, index, max_batch, cache_dir)))
    if CUDA_EP in available:
        providers.append((CUDA_EP, {"device_id": index}))
    if not providers:
        raise DflError(
            f"--device {device}: this ONNX Runtime has no CUDA support (providers: {', '.join(available)}); "
            "install onnxruntime-gpu in place of onnxruntime, or use --device cpu"
        )
    return [*providers, CPU_EP]


def _tensorrt_ep_options(info: ModelInfo, index: int, max_batch: int, cache_dir: Path | None) -> dict[str, object]:
    cache = str(cache_dir if cache_dir is not None else info.path.parent / ".trt_cache")

    def profile(batch: int) -> str:
        return f"{info.input_name}:{'x'.join(str(d) for d in model_input_shape(info, batch))}"

    return {
        "device_id": index,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": cache,
        "trt_max_workspace_size": TRT_WORKSPACE_BYTES,
        "trt_profile_min_shapes": profile(1),
        "trt_profile_opt_shapes": profile(max_batch),
        "trt_profile_max_shapes": profile(max_batch),
    }


class OnnxRuntimeBackend(SwapRuntime):
    """Run an exported ``.onnx`` or ``.dfm`` with ONNX Runtime. ``threads=0`` lets ONNX Runtime choose."""

    backend_name = "onnxruntime"

    def __init__(
        self,
        info: ModelInfo,
        device: str = "cpu",
        max_batch: int = 8,
        threads: int = 0,
        tensorrt_ep: bool = False,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__(info, device, max_batch)
        if info.kind == KIND_CHECKPOINT:
            raise DflError(
                f"--backend onnxruntime cannot run the model folder {info.path}: export it first with "
                f"`dfl-vfx export {info.path} --out NAME.onnx`, or use --backend torch"
            )
        cache = Path(cache_dir) if cache_dir is not None else None
        providers = session_providers(info, self.device, ort.get_available_providers(), max_batch, tensorrt_ep, cache)
        if cache is not None and tensorrt_ep:
            cache.mkdir(parents=True, exist_ok=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, threads)
        options.log_severity_level = 3  # errors only: ORT warns about every node it places on the CPU
        # Idle intra-op threads sleep instead of spinning: the swap pipeline reads, merges and writes other frames on
        # the same cores while the network runs, and spinning threads would take their CPU time.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(info.path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own unrelated exception types
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise DflError(f"{info.path}: ONNX Runtime cannot load it ({reason}); re-export the model") from None
        self.providers: list[str] = self.session.get_providers()
        if self.is_cuda and not {CUDA_EP, TENSORRT_EP} & set(self.providers):
            raise DflError(
                f"--device {self.device}: ONNX Runtime could not start its CUDA provider (check the CUDA 12 and cuDNN "
                "libraries onnxruntime-gpu needs), or use --device cpu"
            )
        inputs = self.session.get_inputs()
        self._morph_name = inputs[1].name if info.needs_morph else None
        output_types = {value.name: value.type for value in self.session.get_outputs()}
        self._output_types = [_ORT_TYPES.get(output_types[name], _ORT_TYPES["tensor(float)"])
                              for name in info.output_names]

    def _morph_feed(self) -> dict[str, np.ndarray]:
        return {self._morph_name: np.array([self.morph], np.float32)} if self._morph_name else {}

    def _run_batch(self, faces: np.ndarray) -> Prediction:
        return prediction_to_numpy(self._run_host(torch.from_numpy(faces).permute(0, 3, 1, 2)))

    def _run_batch_torch(self, faces: Tensor) -> TorchPrediction:
        return self._run_bound(faces) if faces.is_cuda else self._run_host(faces)

    def _run_host(self, faces: Tensor) -> TorchPrediction:
        """Host (numpy) inputs and outputs; ONNX Runtime copies to and from the GPU itself when it runs there."""
        feed = {self.info.input_name: to_model_layout(self.info, faces).numpy(), **self._morph_feed()}
        outputs = self.session.run(list(self.info.output_names), feed)
        rgb, mask_src, mask_dst = (torch.from_numpy(np.asarray(out)) for out in outputs)
        return from_model_layout(self.info, rgb, mask_src, mask_dst)

    def _run_bound(self, faces: Tensor) -> TorchPrediction:
        """CUDA tensors bound in place (IO binding): the faces and the outputs never leave the GPU."""
        model_input = to_model_layout(self.info, faces)
        binding = self.session.io_binding()
        binding.bind_input(self.info.input_name, "cuda", self.device_index, np.float32, tuple(model_input.shape),
                           model_input.data_ptr())
        for name, value in self._morph_feed().items():
            binding.bind_cpu_input(name, value)
        outputs = []
        shapes = model_output_shapes(self.info, len(faces))
        for name, shape, (np_type, torch_type) in zip(self.info.output_names, shapes, self._output_types, strict=True):
            out = torch.empty(shape, dtype=torch_type, device=faces.device)
            binding.bind_output(name, "cuda", self.device_index, np_type, shape, out.data_ptr())
            outputs.append(out)
        torch.cuda.current_stream(faces.device).synchronize()  # ONNX Runtime runs on its own stream
        self.session.run_with_iobinding(binding)  # synchronises its stream before returning
        return from_model_layout(self.info, *outputs)
