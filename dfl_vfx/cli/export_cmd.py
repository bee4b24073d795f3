"""`dfl-vfx export MODEL_DIR --out NAME.onnx [--fp16] [--dfm]`: a trained model as ONNX (or DFM) for inference."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
examples:
  dfl-vfx export shot/model --out shot/model.onnx            # face -> rgb, mask_src, mask_dst (ACEScct)
  dfl-vfx export shot/model --out shot/model_fp16.onnx --fp16
  dfl-vfx export shot/model --out shot/model.dfm --dfm       # DeepFaceLive contract (NHWC BGR, sRGB in/out)

The export is checked with ONNX Runtime against the PyTorch model before it is reported done.
"""


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="export a trained model to ONNX (or DeepFaceLive's .dfm)",
                       description="Export a trained model folder to an ONNX graph with metadata.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="model folder (holds checkpoint.pt) or a checkpoint file")
    p.add_argument("--out", type=Path, required=True, help="output .onnx path (.dfm with --dfm)")
    p.add_argument("--fp16", action="store_true", help="half-precision weights (inputs and outputs stay float32)")
    p.add_argument("--dfm", action="store_true", help="DeepFaceLive-compatible DFM contract")
    p.add_argument("--dfm-input", choices=("srgb", "working"), default="srgb",
                   help="DFM faces: sRGB-encoded as DeepFaceLive feeds them (default) or the working space")
    p.set_defaults(run=run)


OUT_SUFFIXES = (".onnx", ".dfm")  # what `dfl-vfx swap` (dfl_vfx.runtime.model_file) accepts


def check_out(out: Path, dfm: bool) -> None:
    """Refuse an --out that swap would not read back, is a folder, or lies where nothing can be written."""
    from dfl_vfx.errors import DflError
    from dfl_vfx.io.outputs import check_output_dir

    if out.is_dir():
        raise DflError(f"--out {out} is a folder; give a file name such as {out / 'model.onnx'}")
    suffix = out.suffix.lower()
    if suffix not in OUT_SUFFIXES:
        raise DflError(f"--out {out}: unknown extension {out.suffix or '(none)'!r}; name the file .onnx (or .dfm "
                       "with --dfm), which `dfl-vfx swap` reads")
    if suffix == ".dfm" and not dfm:
        raise DflError(f"--out {out}: a .dfm file is DeepFaceLive's contract; add --dfm, or name the file .onnx")
    check_output_dir(out.parent, "--out")


def run(args: argparse.Namespace) -> int:
    import torch

    from dfl_vfx.export.onnx_export import ExportMetadata, export_dfm, export_onnx, verify_export
    from dfl_vfx.models.checkpoint import load_model

    check_out(args.out, args.dfm)  # before loading the model
    model, state = load_model(args.model)
    cfg = model.config
    metadata = ExportMetadata.for_model(model, iterations=int(state.get("iteration", 0)))
    if args.dfm:
        path = export_dfm(model, args.out, metadata, fp16=args.fp16, input_space=args.dfm_input)
    else:
        path = export_onnx(model, args.out, metadata, fp16=args.fp16)
    samples = torch.rand(2, 3, cfg.resolution, cfg.resolution, generator=torch.Generator().manual_seed(0))
    srgb_dfm = args.dfm and args.dfm_input == "srgb"
    atol = (5e-3 if args.fp16 else 1e-4) * (10 if srgb_dfm else 1)  # the sRGB stages add float rounding
    diff = verify_export(path, model, samples, atol=atol)
    print(f"checked with ONNX Runtime: max difference to PyTorch {diff:.2e}")
    print(f"exported {cfg.archi} {cfg.resolution} px ({metadata.iterations} iterations) to {path} "
          f"({path.stat().st_size / 1e6:.1f} MB)")
    return 0
