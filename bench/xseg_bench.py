"""XSeg figures: the full network's size, its training speed, and the reduced network's quality.

* parameters of the full network (256 px, base 32) against the reference's ~17.6 M;
* training speed of the full network: iterations/s at batch 4, 256 px (augmentation on the device, forward,
  sigmoid cross-entropy, backward, RMSprop), synthetic faces in memory;
* quality of the reduced network (64 px, base 8): trained on 10 labelled faces of the occluded demo shot (true
  mattes imported as labels), IoU against the true matte on the 10 other frames, with its wall time.

Writes build/bench/xseg.json (or --out).

    .venv/bin/python bench/xseg_bench.py [--iters 3] [--device auto] [--quality-iters 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import write_result

from dfl_vfx.demo.shot import DemoShotConfig
from dfl_vfx.xseg.augment import XSegAugmentConfig, augment_batch
from dfl_vfx.xseg.mattes import import_mattes
from dfl_vfx.xseg.model import XSeg, XSegConfig, load_xseg, parameter_count
from dfl_vfx.xseg.quality import MATTES, build_occluded_faceset, matte_ious
from dfl_vfx.xseg.train import XSegTrainConfig, train_xseg, xseg_loss

QUALITY_SHOT = DemoShotConfig(frames=20, width=640, height=360, overscan=24, source_photos=1, seed=3)


def training_speed(batch: int, iters: int, device: torch.device) -> dict:
    model = XSeg().to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4)
    generator = torch.Generator(device=device).manual_seed(0)
    faces = torch.rand(batch, 3, 256, 256, device=device)
    masks = (torch.rand(batch, 1, 256, 256, device=device) > 0.5).float()
    augment = XSegAugmentConfig()

    def step() -> None:
        images, target = augment_batch(faces, masks, augment, generator)
        logits, _ = model(images)
        loss = xseg_loss(logits, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / iters
    return {"seconds_per_iteration": round(seconds, 3), "iterations_per_s": round(1 / seconds, 3),
            "samples_per_s": round(batch / seconds, 2)}


def quality(iters: int) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the quality test: one thread is faster for this small network on shared cores
    try:
        return _quality(iters)
    finally:
        torch.set_num_threads(threads)


def _quality(iters: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        faces = build_occluded_faceset(root, QUALITY_SHOT, 64)
        records = faces.records()
        labelled = [r.meta.source_frame for r in records[::2]]
        import_mattes(faces, str(root / MATTES), frames=labelled)
        prepared = time.perf_counter()
        torch.manual_seed(0)
        cfg = XSegTrainConfig(facesets=[str(faces.root)], model_dir=str(root / "model"), resolution=64, base_ch=8,
                              batch_size=4, max_iters=iters, lr=3e-4, background_swap=0.0, degrade=0.0,
                              random_warp=False, random_flip=False, hsv_power=0.0, levels=0.0, device="cpu",
                              preview_every=0)
        result = train_xseg(cfg, progress=False)
        held_out = [r for r in records if r.meta.source_frame not in labelled]
        scores = matte_ious(load_xseg(root / "model").model, faces, held_out, root)
        return {"network": "64 px, base 8", "params": parameter_count(XSeg(XSegConfig.reduced())),
                "labelled_faces": len(labelled), "held_out_faces": len(held_out), "iterations": iters,
                "train_iterations_per_s": round(result.iterations_per_second, 2),
                "iou_mean": round(float(np.mean(scores)), 4), "iou_min": round(float(np.min(scores)), 4),
                "iou_per_frame": [round(s, 4) for s in scores],
                "seconds_prepare": round(prepared - start, 1), "seconds_total": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=3, help="timed full-network iterations (after 1 warm-up)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--quality-iters", type=int, default=120, help="training steps of the reduced network")
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    parser.add_argument("--name", default="xseg", help="result file name (without .json)")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    params = parameter_count(XSeg())
    figures: dict[str, object] = {"full_network": {"params": params, "params_M": round(params / 1e6, 3),
                                                   "fp32_MiB": round(params * 4 / 2**20, 1),
                                                   "reference_params_M": 17.6}}
    print(figures, flush=True)
    figures[f"training_speed_256_batch{args.batch}"] = training_speed(args.batch, args.iters, device)
    print(figures, flush=True)
    figures["quality_reduced"] = quality(args.quality_iters)
    print(figures["quality_reduced"], flush=True)
    settings = {"batch": args.batch, "device": str(device), "iters": args.iters, "torch": torch.__version__,
                "threads": torch.get_num_threads(), "quality_threads": 1,
                "optimizer": "RMSprop lr 1e-4 (quality run: 3e-4)",
                "load_average": [round(v, 2) for v in os.getloadavg()],
                "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None}
    print(f"wrote {write_result(args.out, args.name, figures, settings)}")


if __name__ == "__main__":
    main()
