"""`dfl-vfx train` (and the standalone `trainer` command): train a per-shot face model, farm-ready."""

from __future__ import annotations

import argparse
import sys

from dfl_vfx.models.config import PRESETS

EPILOG = """\
examples:
  dfl-vfx train --src shot/src_faces --dst shot/dst_faces --model-dir shot/model --preset quick96 --max-time 10m
  dfl-vfx train --config shot.toml --set batch_size=16 --set model.ae_dims=512
  torchrun --nproc_per_node 4 -m trainer --config shot.toml        # 4 GPUs, DDP; rank 0 writes
  dfl-vfx train --config shot.toml --gpus 4 --nnodes 2 --node-rank R --rdzv-dir /shared/rdzv   # on each of 2 nodes

Options come from the defaults, then --config (TOML; [model] table for the network), then flags and --set.
The resolved config is saved as MODEL_DIR/config.json. SIGTERM/Ctrl-C save a checkpoint and exit 0; rerun the
same command to resume. Files in MODEL_DIR: checkpoint.pt, config.json, train.log, preview.png, loss.png,
snapshots/.

A new model's face type is the facesets' (both must hold the same; `dfl-vfx extract` writes wf by default)
unless --face-type is given. Resuming needs only --src --dst --model-dir: the model keeps its own face type,
resolution, archi and dims, and a model option given that contradicts them is refused.
"""


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name, help="train a face model (SAEHD-class) on a src and a dst faceset",
        description="Train a per-shot face-swap model. Never prompts; resumable; multi-GPU with torchrun.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="TOML file of options ([model] table for the network)")
    p.add_argument("--src", help="source identity faceset (the face to put in)")
    p.add_argument("--dst", help="destination faceset (the plate's faces)")
    p.add_argument("--model-dir", help="folder of the model: created, or resumed when it holds a checkpoint")
    g = p.add_argument_group("model (new models only; a resumed model keeps its own and refuses contradicting ones)")
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help="a whole network configuration, e.g. quick96 (the face type stays the facesets')")
    g.add_argument("--archi", help="df or liae with letters u, d, t, c: e.g. liae-ud (default), df-udt")
    g.add_argument("--resolution", type=int,
                   help="face size in pixels (multiple of 16; of 32 with 'd'; default 128; at most the facesets' size)")
    g.add_argument("--face-type", help="h, mf, f, wf or head (default: the facesets' face type); must match them")
    g = p.add_argument_group("schedule")
    g.add_argument("--batch-size", type=int, help="faces per side per step (default 8)")
    g.add_argument("--max-iters", type=int, help="stop at this iteration (default: no limit)")
    g.add_argument("--max-time", help="stop after this long, e.g. 90s, 25m, 8h (default: no limit)")
    g.add_argument("--save-every", help="checkpoint interval (default 25m)")
    g.add_argument("--snapshot-every", type=int, help="keep a dated snapshot every N iterations (default 0: none)")
    g.add_argument("--preview-every", type=int, help="write preview.png every N iterations (default 200)")
    g = p.add_argument_group("starting point")
    g.add_argument("--init-from", help="start from another model's checkpoint (same architecture and sizes)")
    g.add_argument("--reinit-inter", action="store_const", const=True,
                   help="with --init-from: fresh inter blocks (reuse a trained model for a new identity)")
    g.add_argument("--pretrain", action="store_const", const=True, help="pretraining mode (DeepFaceLab semantics)")
    g = p.add_argument_group("machine")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto: CUDA when available")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), help="default auto: bf16 on CUDA")
    g.add_argument("--gpus", type=int, default=1, help="GPUs on this node; >1 relaunches under torchrun (DDP)")
    g.add_argument("--nnodes", type=int, default=1,
                   help="machines training together (run the same command on each, all at once, with its rank)")
    g.add_argument("--node-rank", type=int, default=0, help="this machine's rank, 0 to NNODES-1")
    g.add_argument("--rdzv-dir", help="with --nnodes: a folder every node can reach, where node rank 0 publishes "
                                      "its address")
    g.add_argument("--compile", action="store_const", const=True, help="torch.compile the model")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--deterministic", action="store_const", const=True, help="bit-reproducible runs (slower)")
    p.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE",
                   help="any option, repeatable: lr=1e-5, gan_power=0.1, model.ae_dims=512, ct_mode=rct")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar (on a terminal) or progress lines (in a log)")
    p.set_defaults(run=run)


FLAG_KEYS = ("src", "dst", "model_dir", "preset", "batch_size", "max_iters", "max_time", "save_every",
             "snapshot_every", "preview_every", "init_from", "reinit_inter", "pretrain", "device", "precision",
             "compile", "seed", "deterministic")
MODEL_FLAG_KEYS = ("archi", "resolution", "face_type")


def overrides_from(args: argparse.Namespace) -> dict:
    """Command-line values that were given (None means: not on the command line)."""
    from trainer.config import parse_set

    data = {k: getattr(args, k) for k in FLAG_KEYS if getattr(args, k) is not None}
    model = {k: getattr(args, k) for k in MODEL_FLAG_KEYS if getattr(args, k) is not None}
    extra = parse_set(args.set_items)
    if model or "model" in extra:
        data["model"] = {**extra.pop("model", {}), **model}
    # a preset replaces the whole model table, so it goes first
    ordered = {"preset": data.pop("preset")} if "preset" in data else {}
    return {**ordered, **data, **extra}


def spelled_from(args: argparse.Namespace) -> dict[str, str]:
    """How each given model option was spelled on the command line (``--face-type``, ``--set model.ae_dims``)."""
    from trainer.config import parse_set

    spelled = {k: f"--set model.{k}" for k in parse_set(args.set_items).get("model", {})}
    spelled |= {k: "--" + k.replace("_", "-") for k in MODEL_FLAG_KEYS if getattr(args, k) is not None}
    if args.preset is not None:
        spelled["preset"] = f"--preset {args.preset}"
    return spelled


def run(args: argparse.Namespace) -> int:
    from dfl_vfx import api
    from dfl_vfx.errors import DflError
    from dfl_vfx.io.outputs import check_output_dir
    from trainer.distributed import RendezvousTimeout, relaunch_with_torchrun

    cfg = api.train_config(args.config, overrides_from(args), spelled_from(args))
    if cfg.model_dir:  # before any work (the trainer checks again, for the library and torchrun ranks)
        check_output_dir(cfg.model_dir, "--model-dir")
    if args.nnodes < 1 or not 0 <= args.node_rank < args.nnodes:
        raise DflError(f"--node-rank {args.node_rank} --nnodes {args.nnodes}: give 1 or more nodes and a rank from "
                       "0 to NNODES-1")
    if args.nnodes > 1 and not args.rdzv_dir:
        raise DflError("--nnodes needs --rdzv-dir, a folder every node can reach (where node rank 0 publishes "
                       "its address)")
    if args.gpus > 1 or args.nnodes > 1:
        try:
            return relaunch_with_torchrun(args.gpus, nnodes=args.nnodes, node_rank=args.node_rank,
                                          rdzv_dir=args.rdzv_dir)
        except RendezvousTimeout as exc:  # retryable: not a user error (exit 1, not 2)
            print(f"dfl-vfx train: {exc}", file=sys.stderr)
            return 1
    result = api.train(cfg, progress=args.progress)
    print(f"stopped ({result.stop_reason}) at iteration {result.iteration}: {result.iterations_this_run} "
          f"iterations in {result.seconds:.1f} s ({result.iterations_per_second:.2f} it/s); "
          f"model in {cfg.model_dir}")
    return 0
