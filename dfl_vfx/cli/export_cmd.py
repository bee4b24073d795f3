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


def run(args: argparse.Namespace) -> int:
    from dfl_vfx import api

    result = api.export(args.model, args.out, dfm=args.dfm, fp16=args.fp16, dfm_input=args.dfm_input)
    print(f"checked with ONNX Runtime: max difference to PyTorch {result.max_difference:.2e}")
    print(f"exported {result.archi} {result.resolution} px ({result.iterations} iterations) to {result.path} "
          f"({result.size_bytes / 1e6:.1f} MB)")
    return 0
