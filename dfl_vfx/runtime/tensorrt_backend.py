"""TensorRT backend: engines built lazily from the ONNX, cached per model, TensorRT version, GPU and batch range.

``tensorrt`` is imported inside functions only: it cannot be installed on the project's CPU machines, and importing
this module must work there. Engines (``.plan``) are bound to a TensorRT version and a GPU SM, so each farm GPU type
builds its own, named by :func:`engine_cache_name`, next to a shared timing cache that makes later builds fast.
Both files are written atomically, so concurrent farm jobs never read a half-written plan.

Precision: TensorRT 11 builds every network strongly typed and has no FP16 builder flag; precision comes from the
ONNX, so ``precision="fp16"`` there means "this is the fp16 ONNX" (``dfl-vfx export --fp16``). TensorRT 10 also
gets ``BuilderFlag.FP16`` for it. Inference runs on torch CUDA tensors on the current stream, no host copies.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import Tensor

from dfl_vfx.errors import DflError
from dfl_vfx.io.atomic import atomic_path
from dfl_vfx.runtime.base import (
    GpuOutOfMemory,
    Prediction,
    SwapRuntime,
    TorchPrediction,
    from_model_layout,
    model_input_shape,
    prediction_to_numpy,
    to_model_layout,
)
from dfl_vfx.runtime.model_file import KIND_CHECKPOINT, ModelInfo

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16")
TRT_WORKSPACE_BYTES = 1 << 30
NOT_INSTALLED = (
    "--backend tensorrt: TensorRT is not installed (pip install tensorrt on a machine with an NVIDIA GPU); "
    "use --backend onnxruntime"
)


@functools.cache
def tensorrt_available() -> bool:
    """True when the ``tensorrt`` Python package imports."""
    try:
        import tensorrt  # noqa: F401
    except (ImportError, OSError):  # OSError: the package is there but its CUDA libraries are not
        return False
    return True


def _major_minor(version: str) -> str:
    parts = str(version).split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise ValueError(f"TensorRT version {version!r} is not MAJOR.MINOR[...]")
    return f"{int(parts[0])}.{int(parts[1])}"


def _sm(compute_capability: tuple[int, int] | str | int) -> str:
    if isinstance(compute_capability, tuple):
        major, minor = compute_capability
        return f"{int(major)}{int(minor)}"
    text = str(compute_capability).replace(".", "")
    if not text.isdigit():
        raise ValueError(f"compute capability {compute_capability!r} is not like (9, 0), '9.0' or 90")
    return text


def engine_cache_name(
    model_path: str | Path,
    sha256: str,
    trt_version: str,
    compute_capability: tuple[int, int] | str | int,
    precision: str,
    batch_min: int,
    batch_max: int,
) -> str:
    """``<model stem>.<sha8>.trt<maj.min>.sm<cc>.<prec>.b<min>-<max>.plan``.

    ``compute_capability`` is (major, minor), ``"9.0"`` or ``90``; ``trt_version`` is ``tensorrt.__version__``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if not 1 <= batch_min <= batch_max:
        raise ValueError(f"batch range {batch_min}-{batch_max} is invalid")
    return (
        f"{Path(model_path).stem}.{sha256[:8].lower()}.trt{_major_minor(trt_version)}.sm{_sm(compute_capability)}"
        f".{precision}.b{batch_min}-{batch_max}.plan"
    )


def timing_cache_name(trt_version: str, compute_capability: tuple[int, int] | str | int) -> str:
    """The timing cache shared by every model built with one TensorRT version on one GPU type."""
    return f"timing.trt{_major_minor(trt_version)}.sm{_sm(compute_capability)}.cache"


def onnx_precision(path: str | Path) -> str:
    """``"fp16"`` when the ONNX stores float16 weights (``dfl-vfx export --fp16``), else ``"fp32"``."""
    proto = onnx.load(str(path), load_external_data=False)
    float16 = onnx.TensorProto.FLOAT16
    return "fp16" if any(init.data_type == float16 for init in proto.graph.initializer) else "fp32"


class TensorRTBackend(SwapRuntime):
    """Run an exported ``.onnx`` or ``.dfm`` as a TensorRT engine on one CUDA device."""

    backend_name = "tensorrt"

    def __init__(
        self,
        info: ModelInfo,
        device: str = "cuda:0",
        max_batch: int = 8,
        cache_dir: str | Path | None = None,
        precision: str = "fp32",
    ) -> None:
        super().__init__(info, device, max_batch)
        if info.kind == KIND_CHECKPOINT:
            raise DflError(
                f"--backend tensorrt cannot run the model folder {info.path}: export it first with "
                f"`dfl-vfx export {info.path} --out NAME.onnx`, or use --backend torch"
            )
        if precision not in PRECISIONS:
            raise DflError(f"TensorRT precision {precision!r} is unknown; use fp32 or fp16")
        if not tensorrt_available():
            raise DflError(NOT_INSTALLED)
        if not self.is_cuda or not torch.cuda.is_available():
            raise DflError(f"--backend tensorrt needs an NVIDIA GPU (--device cuda:N), not {device}; "
                           "use --backend onnxruntime on the CPU")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else info.path.parent / ".trt_cache"
        self.precision = precision
        self.built_max_batch = max_batch
        self.engine_path: Path | None = None
        self._runtime: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._morph: Tensor | None = None

    # -----------------------------------------------------------------------------------------------------------
    # Engine

    def _ensure_engine(self) -> None:
        if self._context is not None:
            return
        import tensorrt as trt

        logger = trt.Logger(trt.Logger.WARNING)
        props = torch.cuda.get_device_properties(self.device_index)
        capability = (props.major, props.minor)
        engine_path = self.cache_dir / engine_cache_name(
            self.info.path, self.info.sha256, trt.__version__, capability, self.precision, 1, self.built_max_batch
        )
        self.engine_path = engine_path
        runtime = trt.Runtime(logger)
        engine = None
        if engine_path.is_file():
            engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
            if engine is None:
                log.warning("cached TensorRT engine %s does not load; rebuilding it", engine_path)
        if engine is None:
            plan = self._build_plan(trt, logger, capability, engine_path)
            engine = runtime.deserialize_cuda_engine(plan)
            if engine is None:
                raise DflError(f"{self.info.path}: TensorRT built an engine it cannot load; use --backend onnxruntime")
        context = engine.create_execution_context()
        if context is None:
            raise GpuOutOfMemory(f"TensorRT could not allocate GPU memory for {engine_path.name}")
        self._runtime, self._engine, self._context = runtime, engine, context  # the runtime must outlive its engine

    def _build_plan(self, trt: Any, logger: Any, capability: tuple[int, int], engine_path: Path) -> bytes:
        """Parse the ONNX, build with a 1 / max / max batch profile and the shared timing cache; cache the plan."""
        trt_major = int(trt.__version__.split(".")[0])
        if self.precision == "fp16" and trt_major >= 11 and onnx_precision(self.info.path) != "fp16":
            raise DflError(
                f"{self.info.path} has fp32 weights and TensorRT {trt.__version__} takes precision from the ONNX: "
                "export it with `dfl-vfx export --fp16` and run that file, or build in fp32"
            )
        log.info("building TensorRT engine %s (first use on this GPU type; cached afterwards)", engine_path.name)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(self.info.path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise DflError(f"{self.info.path}: TensorRT cannot parse it ({errors[:200]}); use --backend onnxruntime")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, TRT_WORKSPACE_BYTES)
        if self.precision == "fp16" and trt_major < 11:
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        profile.set_shape(self.info.input_name, model_input_shape(self.info, 1),
                          model_input_shape(self.info, self.built_max_batch),
                          model_input_shape(self.info, self.built_max_batch))
        config.add_optimization_profile(profile)
        timing_path = self.cache_dir / timing_cache_name(trt.__version__, capability)
        timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise DflError(f"{self.info.path}: TensorRT could not build an engine; use --backend onnxruntime")
        plan = bytes(plan)
        self._write(timing_path, bytes(config.get_timing_cache().serialize()))
        self._write(engine_path, plan)
        return plan

    def _write(self, path: Path, data: bytes) -> None:
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        except OSError as exc:
            log.warning("cannot cache %s (%s); it will be rebuilt next time", path, exc.strerror or exc)

    # -----------------------------------------------------------------------------------------------------------
    # Inference

    def _run_batch(self, faces: np.ndarray) -> Prediction:
        nchw = torch.from_numpy(faces).to(self.device).permute(0, 3, 1, 2)
        return prediction_to_numpy(self._run_batch_torch(nchw))

    def _run_batch_torch(self, faces: Tensor) -> TorchPrediction:
        import tensorrt as trt

        with torch.cuda.device(self.device_index):
            self._ensure_engine()
            engine, context = self._engine, self._context
            model_input = to_model_layout(self.info, faces)
            context.set_input_shape(self.info.input_name, tuple(model_input.shape))
            context.set_tensor_address(self.info.input_name, model_input.data_ptr())
            if self.info.needs_morph:
                morph_name = self._morph_input_name(trt)
                self._morph = torch.tensor([self.morph], dtype=torch.float32, device=faces.device)
                context.set_tensor_address(morph_name, self._morph.data_ptr())
            outputs = []
            for name in self.info.output_names:
                dtype = torch.float16 if engine.get_tensor_dtype(name) == trt.DataType.HALF else torch.float32
                out = torch.empty(tuple(context.get_tensor_shape(name)), dtype=dtype, device=faces.device)
                context.set_tensor_address(name, out.data_ptr())
                outputs.append(out)
            if not context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
                raise RuntimeError(f"TensorRT failed to run {self.info.path.name} at batch {len(faces)}")
            return from_model_layout(self.info, *outputs)

    def _morph_input_name(self, trt: Any) -> str:
        engine = self._engine
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT and name != self.info.input_name:
                return name
        raise DflError(f"{self.info.path}: the TensorRT engine has no morph_value input; re-export the model")
