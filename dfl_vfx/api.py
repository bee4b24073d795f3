"""The engine's public API: extract, train, export, swap a shot or one frame, evaluate.

The ``dfl-vfx`` commands, ``dfl-vfx serve`` and the demo are thin adapters over these functions, so a pipeline
script gets exactly what the CLI does. Settings are typed (:class:`ExtractOptions`, :class:`TrainConfig`,
:class:`SwapSettings`, built from schema-named values by :func:`swap_settings`); user errors raise
:class:`~dfl_vfx.errors.DflError` (:class:`~dfl_vfx.schema.SettingError` naming the setting) with one line to show.

Heavy modules (torch, the trainer, ONNX export) are imported by the functions that need them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dfl_vfx.errors import DflError
from dfl_vfx.schema import schema_document

if TYPE_CHECKING:
    from dfl_vfx.eval.shot import EvalReport
    from dfl_vfx.extract.pipeline import ExtractOptions, ExtractSummary
    from dfl_vfx.swap.engine import SwapEngine, SwapSettings
    from dfl_vfx.swap.frame import FrameOutcome
    from dfl_vfx.swap.pipeline import SwapSummary
    from trainer.config import TrainConfig
    from trainer.loop import TrainResult

__all__ = ["ExportResult", "evaluate", "export", "extract", "load_engine", "schema", "swap_frame", "swap_settings",
           "swap_shot", "train", "train_config"]

EXPORT_SUFFIXES = (".onnx", ".dfm")  # what `dfl-vfx swap` (dfl_vfx.runtime.model_file) reads


def schema() -> dict[str, Any]:
    """The swap settings' schema (what ``dfl-vfx schema`` prints)."""
    return schema_document()


def extract(plate: str, faceset_dir: str | Path, options: ExtractOptions | None = None,
            frames: str | None = None) -> ExtractSummary:
    """Find, align and write the faces of ``plate`` (a sequence spec) into the faceset ``faceset_dir``."""
    from dfl_vfx.extract.pipeline import ExtractOptions
    from dfl_vfx.extract.pipeline import extract as run_extract

    return run_extract(plate, str(faceset_dir), options or ExtractOptions(), frames)


def train_config(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None,
                 spelled: dict[str, str] | None = None) -> TrainConfig:
    """A validated training config: defaults, then the TOML file, then ``overrides`` (``{"model": {...}}`` nests)."""
    from trainer.config import load_config

    return load_config(config_file, overrides or {}, spelled)


def train(config: TrainConfig, progress: bool | None = None) -> TrainResult:
    """Train (or resume) the model of ``config`` until its stop conditions or a signal; always leaves a checkpoint."""
    from dfl_vfx.io.outputs import check_output_dir
    from trainer.loop import train as run_train

    if config.model_dir:
        check_output_dir(config.model_dir, "--model-dir")
    return run_train(config, progress=progress)


@dataclass
class ExportResult:
    """An exported model file and how closely ONNX Runtime reproduces PyTorch on it."""

    path: Path
    archi: str
    resolution: int
    iterations: int
    max_difference: float
    size_bytes: int


def check_export_path(out: str | Path, dfm: bool) -> Path:
    """Refuse an export target that swap would not read back, that is a folder, or where nothing can be written."""
    from dfl_vfx.io.outputs import check_output_dir

    out = Path(out)
    if out.is_dir():
        raise DflError(f"--out {out} is a folder; give a file name such as {out / 'model.onnx'}")
    suffix = out.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise DflError(f"--out {out}: unknown extension {out.suffix or '(none)'!r}; name the file .onnx (or .dfm "
                       "with --dfm), which `dfl-vfx swap` reads")
    if suffix == ".dfm" and not dfm:
        raise DflError(f"--out {out}: a .dfm file is DeepFaceLive's contract; add --dfm, or name the file .onnx")
    check_output_dir(out.parent, "--out")
    return out


def export(model_dir: str | Path, out: str | Path, dfm: bool = False, fp16: bool = False,
           dfm_input: str = "srgb") -> ExportResult:
    """Export a trained model to ONNX (or DeepFaceLive's DFM) and check the file against PyTorch."""
    import torch

    from dfl_vfx.export.onnx_export import ExportMetadata, export_dfm, export_onnx, verify_export
    from dfl_vfx.models.checkpoint import load_model

    out = check_export_path(out, dfm)  # before loading the model
    model, state = load_model(model_dir)
    cfg = model.config
    metadata = ExportMetadata.for_model(model, iterations=int(state.get("iteration", 0)))
    if dfm:
        path = export_dfm(model, out, metadata, fp16=fp16, input_space=dfm_input)
    else:
        path = export_onnx(model, out, metadata, fp16=fp16)
    samples = torch.rand(2, 3, cfg.resolution, cfg.resolution, generator=torch.Generator().manual_seed(0))
    srgb_dfm = dfm and dfm_input == "srgb"
    atol = (5e-3 if fp16 else 1e-4) * (10 if srgb_dfm else 1)  # the sRGB stages add float rounding
    difference = verify_export(path, model, samples, atol=atol)
    return ExportResult(Path(path), cfg.archi, cfg.resolution, metadata.iterations, float(difference),
                        Path(path).stat().st_size)


def swap_settings(model: str | Path, values: dict[str, Any] | None = None, threads: int = 0) -> SwapSettings:
    """Swap settings from schema-named values (``{"erode": 10, "layers": "rgba,mask"}``), validated."""
    from dfl_vfx.swap.settings import swap_settings as build

    return build(str(model), values or {}, threads=threads)


def load_engine(settings: SwapSettings) -> SwapEngine:
    """Load the model of ``settings`` once, for many :func:`swap_frame` calls."""
    from dfl_vfx.swap.engine import SwapEngine

    return SwapEngine(settings)


def swap_shot(plate: str, out: str | Path, settings: SwapSettings, frames: str | None = None,
              faceset: str | Path | None = None, jobs: int = 2, overwrite: bool = False,
              compression: str | None = None, progress: bool | None = None) -> SwapSummary:
    """Swap a plate sequence (or a ``frames`` chunk of it) into ``out``; reruns skip finished frames."""
    from dfl_vfx.swap.pipeline import swap_shot as run_shot

    return run_shot(plate, str(out), settings, frames=frames, faceset=None if faceset is None else str(faceset),
                    jobs=jobs, overwrite=overwrite, compression=compression, progress=progress)


def swap_frame(engine: SwapEngine, plate: str, frame: int, out: str | Path, faceset: str | Path | None = None,
               compression: str | None = None) -> FrameOutcome:
    """Swap one ``frame`` of the sequence ``plate`` into the file ``out`` with a loaded engine.

    Faces come from the destination ``faceset``'s tracks, or are detected on the frame.
    """
    from dfl_vfx.io.sequence import open_sequence
    from dfl_vfx.swap.faces import FaceFinder, faceset_plans
    from dfl_vfx.swap.frame import swap_frame as run_frame

    source = open_sequence(plate, str(frame)).path(frame)
    if not source.is_file():
        raise DflError(f"frame {frame}: {source} does not exist")
    if Path(out).resolve() == source.resolve():
        raise DflError(f"out {out} is the plate frame itself; write the swap somewhere else")
    if faceset is not None:
        return run_frame(engine, source, out, frame, faceset_plans(faceset, [frame]).get(frame, []),
                         compression=compression)
    return run_frame(engine, source, out, frame, finder=FaceFinder(), compression=compression)


def evaluate(swapped: str, src_faceset: str | Path, model: str | Path | None = None, plate: str | None = None,
             frames: str | None = None, max_faces: int = 200, colorspace: str | None = None,
             progress: bool | None = None) -> EvalReport:
    """The DeepFaceLab paper's metrics on a swapped shot (SSIM, identity, landmark and pose distance)."""
    from dfl_vfx.eval.shot import evaluate_shot

    if not Path(src_faceset).is_dir():
        raise DflError(f"--src-faceset {src_faceset}: no such folder; give the src faceset the model trained on")
    return evaluate_shot(swapped, str(src_faceset), model=None if model is None else str(model), plate=plate,
                         frames=frames, max_faces=max_faces, colorspace=colorspace, progress=progress)
