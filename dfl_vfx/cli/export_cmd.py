"""`dfl-vfx export MODEL_DIR --out NAME.onnx [--fp16] [--dfm | --torchscript]`: a trained model as ONNX (or DFM, or
TorchScript for Nuke's CatFileCreator) for inference."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
examples:
  dfl-vfx export shot/model --out shot/model.onnx            # face -> rgb, mask_src, mask_dst (ACEScct)
  dfl-vfx export shot/model --out shot/model_fp16.onnx --fp16
  dfl-vfx export shot/model --out shot/model.dfm --dfm       # DeepFaceLive contract (NHWC BGR, sRGB in/out)
  dfl-vfx export shot/model --out shot/model.pt --torchscript  # Nuke: CatFileCreator -> .cat -> Inference

The export is checked with ONNX Runtime against the PyTorch model before it is reported done (a TorchScript file is
loaded back and checked against the PyTorch model with the colour curves).
"""

TORCHSCRIPT_RTOL = 1e-4  # relative to max(1, |value|): float32 rounding of the same ops in another order


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="export a trained model to ONNX (or DeepFaceLive's .dfm, or TorchScript for Nuke)",
                       description="Export a trained model folder to an ONNX graph with metadata.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="model folder (holds checkpoint.pt) or a checkpoint file")
    p.add_argument("--out", type=Path, required=True,
                   help="output .onnx path (.dfm with --dfm, .pt with --torchscript)")
    p.add_argument("--fp16", action="store_true", help="half-precision weights (inputs and outputs stay float32)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--dfm", action="store_true", help="DeepFaceLive-compatible DFM contract")
    kind.add_argument("--torchscript", action="store_true",
                      help="scripted TorchScript for Nuke's CatFileCreator: linear 1xCxHxW in, 1x4xHxW (face RGB "
                           "and mask) out")
    p.add_argument("--dfm-input", choices=("srgb", "working"), default="srgb",
                   help="DFM faces: sRGB-encoded as DeepFaceLive feeds them (default) or the working space")
    p.add_argument("--plate-space", choices=("ACEScg", "lin_rec709"), default="ACEScg",
                   help="TorchScript: the linear space Nuke works in (ACEScg for an ACES config, lin_rec709 for "
                        "Nuke's default config)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.torchscript:
        return run_torchscript(args)
    from dfl_vfx import api

    result = api.export(args.model, args.out, dfm=args.dfm, fp16=args.fp16, dfm_input=args.dfm_input)
    print(f"checked with ONNX Runtime: max difference to PyTorch {result.max_difference:.2e}")
    print(f"exported {result.archi} {result.resolution} px ({result.iterations} iterations) to {result.path} "
          f"({result.size_bytes / 1e6:.1f} MB)")
    return 0


def run_torchscript(args: argparse.Namespace) -> int:
    import torch

    from dfl_vfx.errors import DflError
    from dfl_vfx.export.torchscript_export import export_torchscript, verify_torchscript
    from dfl_vfx.io.outputs import check_output_dir
    from dfl_vfx.models.checkpoint import load_model

    out = Path(args.out)
    if out.is_dir():
        raise DflError(f"--out {out} is a folder; give a file name such as {out / 'model.pt'}")
    if out.suffix.lower() != ".pt":
        raise DflError(f"--out {out}: a TorchScript export is named .pt (CatFileCreator's torchScriptFile)")
    if args.fp16:
        raise DflError("--fp16 does not apply to --torchscript: Nuke halves the model itself (Optimise for Speed "
                       "and Memory); leave --fp16 out")
    check_output_dir(out.parent, "--out")
    model, state = load_model(args.model)
    iterations = int(state.get("iteration", 0))
    path = export_torchscript(model, out, iterations, args.plate_space)
    res = int(model.config.resolution)
    samples = torch.rand(2, 3, res, res, generator=torch.Generator().manual_seed(0)) * 2.0
    difference = verify_torchscript(path, model, args.plate_space, samples)
    if not difference <= TORCHSCRIPT_RTOL:
        raise DflError(f"{path}: the TorchScript differs from PyTorch by {difference:.3g} (relative; tolerance "
                       f"{TORCHSCRIPT_RTOL:g}); do not ship it")
    print(f"checked loaded back: max relative difference to PyTorch {difference:.2e}")
    print(f"exported {model.config.archi} {res} px ({iterations} iterations) to {path} as TorchScript for Nuke "
          f"({path.stat().st_size / 1e6:.1f} MB); in NukeX: CatFileCreator, channels in rgba.red,rgba.green,"
          "rgba.blue, channels out rgba.red,rgba.green,rgba.blue,rgba.alpha, output scale 1")
    return 0
