"""Training throughput: iterations/s and samples/s (and TFLOP/s on a GPU) for df-ud 128, df-ud 256, liae-ud 256.

Batch 8 per side, synthetic faces already in memory, so the figure is the model step itself (augmentation, forward,
losses, backward, optimiser). Writes build/bench/train.json (or --out).

    .venv/bin/python bench/train_bench.py [--iters 3] [--device auto] [--configs df-ud:128,liae-ud:256]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import write_result

from dfl_vfx.models.config import ModelConfig
from dfl_vfx.models.losses import LossConfig, reconstruction_loss
from dfl_vfx.models.saehd import SAEHD
from trainer.augment import AugmentConfig, make_samples
from trainer.config import TrainConfig
from trainer.optim import make_optimizer

DEFAULT_CONFIGS = "df-ud:128,df-ud:256,liae-ud:256"


def _flops_per_iteration(model: SAEHD, batch: int, res: int, device: torch.device) -> float | None:
    """Forward+backward FLOPs of one step, counted by torch's FlopCounterMode (about 3x the forward)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    x = torch.rand(batch, 3, res, res, device=device)
    with FlopCounterMode(display=False) as counter:
        out = model(x, x)
        sum(v.float().mean() for v in out.values()).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def bench_config(archi: str, res: int, batch: int, iters: int, device: torch.device, precision: str) -> dict:
    cfg = TrainConfig(model=ModelConfig(archi=archi, resolution=res), batch_size=batch, precision=precision)
    model = SAEHD(cfg.model).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer("adabelief", model.parameters(), cfg.lr, False, 0)
    generator = torch.Generator(device=device).manual_seed(0)
    faces = torch.rand(batch, 3, res, res, device=device)
    masks = torch.ones(batch, 1, res, res, device=device)
    augment = AugmentConfig()
    loss_cfg = LossConfig(resolution=res)
    dtype = {"fp32": None, "bf16": torch.bfloat16}[precision]

    def step() -> None:
        src = make_samples(faces, masks, masks, augment, generator)
        dst = make_samples(faces, masks, masks, augment, generator)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(src["input"], dst["input"])
            loss = reconstruction_loss(out["src_rgb"], src["target"], out["src_mask"], src["mask"], loss_cfg)[0]
            loss = loss + reconstruction_loss(out["dst_rgb"], dst["target"], out["dst_mask"], dst["mask"],
                                              loss_cfg)[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):  # warm-up: allocator, oneDNN/cuDNN kernel choice
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / iters
    entry = {"params_M": round(model.parameter_count() / 1e6, 2), "seconds_per_iteration": round(seconds, 4),
             "iterations_per_s": round(1 / seconds, 3), "samples_per_s": round(2 * batch / seconds, 2)}
    flops = _flops_per_iteration(model, batch, res, device)
    if flops:
        entry["tflop_per_iteration"] = round(flops / 1e12, 3)
        entry["achieved_tflop_per_s"] = round(flops / seconds / 1e12, 3)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per config (after 2 warm-up)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="archi:resolution list")
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    precision = args.precision if args.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    figures = {}
    for item in args.configs.split(","):
        archi, res = item.split(":")
        figures[f"{archi} {res}"] = bench_config(archi, int(res), args.batch, args.iters, device, precision)
        print(item, figures[f"{archi} {res}"], flush=True)
    settings = {"batch": args.batch, "device": str(device), "precision": precision, "iters": args.iters,
                "torch": torch.__version__, "threads": torch.get_num_threads(),
                "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None}
    print(f"wrote {write_result(args.out, 'train', figures, settings)}")


if __name__ == "__main__":
    main()
