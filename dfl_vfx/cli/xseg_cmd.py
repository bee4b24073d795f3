"""`dfl-vfx xseg VERB`: per-shot XSeg face segmentation (train, apply, export; see docs/xseg.md).

Verbs come from the ``VERBS`` registry: name -> function adding that verb's parser (it sets ``run``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from dfl_vfx.cli import xseg_label_cmd

TRAIN_EPILOG = """\
examples:
  dfl-vfx xseg train shot/dst_faces shot/src_faces --model-dir shot/xseg --max-time 30m
  dfl-vfx xseg train shot/dst_faces --model-dir shot/xseg --config xseg.toml --set batch_size=8
  torchrun --nproc_per_node 4 -m dfl_vfx.cli.main xseg train shot/dst_faces --model-dir shot/xseg   # DDP

Trains on the faces that carry labels (polygons from the label editor or DeepFaceLab, or imported mattes). The
model folder holds checkpoint.pt, config.json, train.log, preview.png and loss.png; SIGTERM/Ctrl-C save and exit
0, and the same command resumes.
"""


def add_train(verbs: argparse._SubParsersAction, name: str) -> None:
    p = verbs.add_parser(name, help="train an XSeg model on the labelled faces of facesets",
                         description="Train a per-shot XSeg segmentation model. Never prompts; resumable.",
                         epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("facesets", nargs="+", help="facesets holding labelled faces")
    p.add_argument("--model-dir", required=True, help="folder of the XSeg model: created, or resumed")
    p.add_argument("--config", help="TOML file of XSeg training options")
    p.add_argument("--resolution", type=int, help="network input size, a multiple of 64 (default 256)")
    p.add_argument("--base-ch", type=int, help="base channels (default 32, the reference network)")
    p.add_argument("--batch-size", type=int, help="faces per step (default 4)")
    p.add_argument("--max-iters", type=int, help="stop at this iteration (default: no limit)")
    p.add_argument("--max-time", help="stop after this long, e.g. 90s, 25m, 8h (default: no limit)")
    p.add_argument("--save-every", help="checkpoint interval (default 25m)")
    p.add_argument("--preview-every", type=int, help="write preview.png every N iterations (default 200)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto: CUDA when available")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE",
                   help="any option, repeatable: lr=5e-5, background_swap=0.3")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress output")
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from dfl_vfx.xseg.train import load_xseg_config, train_xseg

    flags = {k: getattr(args, k) for k in ("model_dir", "resolution", "base_ch", "batch_size", "max_iters",
                                             "max_time", "save_every", "preview_every", "device", "seed")
             if getattr(args, k) is not None}
    cfg = load_xseg_config(args.config, {"facesets": [str(f) for f in args.facesets], **flags}, args.set_items)
    result = train_xseg(cfg, progress=args.progress)
    print(f"stopped ({result.stop_reason}) at iteration {result.iteration}: {result.iterations_this_run} "
          f"iterations in {result.seconds:.1f} s ({result.iterations_per_second:.2f} it/s); model in {cfg.model_dir}")
    return 0


def add_apply(verbs: argparse._SubParsersAction, name: str) -> None:
    p = verbs.add_parser(name, help="predict and store an XSeg mask with every face of a faceset",
                         description="Run a trained XSeg model on every face and store its mask as "
                                     "FACESET/xseg/<face stem>.png (binarised at 0.5 like DeepFaceLab unless --soft).")
    p.add_argument("faceset", type=Path)
    p.add_argument("--model", required=True, type=Path, help="XSeg model folder (or its checkpoint.pt)")
    p.add_argument("--soft", action="store_true", help="store the soft probability (values < 0.1 zeroed)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress output")
    p.set_defaults(run=run_apply)


def run_apply(args: argparse.Namespace) -> int:
    from dfl_vfx.xseg.apply import apply_xseg

    report = apply_xseg(args.faceset, args.model, soft=args.soft, device=args.device, progress=args.progress)
    print(f"{report.faces} masks written to {report.folder} (mean coverage {report.mean_coverage:.3f})")
    return 0


def add_remove(verbs: argparse._SubParsersAction, name: str) -> None:
    p = verbs.add_parser(name, help="delete the applied XSeg masks of a faceset (labels are kept)")
    p.add_argument("faceset", type=Path)
    p.set_defaults(run=run_remove)


def run_remove(args: argparse.Namespace) -> int:
    from dfl_vfx.xseg.apply import remove_xseg_masks

    print(f"{remove_xseg_masks(args.faceset)} applied masks removed from {args.faceset}")
    return 0


def add_export(verbs: argparse._SubParsersAction, name: str) -> None:
    p = verbs.add_parser(name, help="write a trained XSeg model as ONNX",
                         description="Export to ONNX. Default contract: input 'face' (N, 3, R, R) float32 RGB [0, 1] "
                                     "in the faceset's working space, output 'mask' (N, 1, R, R) probability. "
                                     "--dfl-contract: DeepFaceLab's (in_face:0 NHWC BGR, out_mask:0 NHWC).")
    p.add_argument("--model", required=True, type=Path, help="XSeg model folder (or its checkpoint.pt)")
    p.add_argument("--out", required=True, type=Path, help="the .onnx file to write")
    p.add_argument("--dfl-contract", action="store_true", help="DeepFaceLab's XSeg ONNX names and layout")
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from dfl_vfx.xseg.export import export_xseg_onnx

    path = export_xseg_onnx(args.model, args.out, dfl_contract=args.dfl_contract)
    print(f"wrote {path}")
    return 0


# verb -> function(verbs, name) adding its parser
VERBS: dict[str, Callable[[argparse._SubParsersAction, str], None]] = {
    "train": add_train,
    "apply": add_apply,
    "remove": add_remove,
    "export": add_export,
    "edit": xseg_label_cmd.add_edit,
    "import-mattes": xseg_label_cmd.add_import_mattes,
}


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="XSeg face segmentation: train, apply and export per-shot masks",
                       description="Per-shot XSeg segmentation masks that handle hands, hair and glasses "
                                   "(docs/xseg.md).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, add in VERBS.items():
        add(verbs, verb)
