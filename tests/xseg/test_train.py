"""XSeg training: labelled faces only, the farm behaviour (config, checkpoint, resume, signal), loss and errors."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from dfl_vfx.cli.main import main
from dfl_vfx.errors import DflError
from dfl_vfx.models.checkpoint import load_checkpoint
from dfl_vfx.xseg.augment import XSegAugmentConfig, augment_batch, background_swap, jpeg_like
from dfl_vfx.xseg.train import (
    XSegTrainConfig,
    XSegTrainer,
    iou,
    load_labelled_faces,
    load_xseg_config,
    train_xseg,
    xseg_loss,
)

TINY = dict(resolution=64, base_ch=4, device="cpu", preview_every=0)


def test_loads_only_labelled_faces(labelled_faceset: Path) -> None:
    data = load_labelled_faces([str(labelled_faceset)], 64)
    assert len(data) == 8 and data.face_type == "whole_face"
    assert data.faces.shape == (8, 3, 64, 64) and data.masks.shape == (8, 1, 64, 64)
    # the include polygon is an ellipse covering 22..30 % x 30..36 % radii: between 20 % and 40 % of the face
    coverage = data.masks.float().mean(dim=(1, 2, 3))
    assert bool(((coverage > 0.2) & (coverage < 0.4)).all())


def test_faceset_without_labels_is_one_line_error(tmp_path: Path, faceset_builder) -> None:
    faceset_builder(tmp_path / "bare", 3, 0)
    with pytest.raises(DflError, match="none of its 3 faces has a label") as info:
        train_xseg(XSegTrainConfig(facesets=[str(tmp_path / "bare")], model_dir=str(tmp_path / "m"), **TINY))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "m").exists()
    code = main(["xseg", "train", str(tmp_path / "bare"), "--model-dir", str(tmp_path / "m"), "--resolution", "64"])
    assert code == 2


def test_loss_is_sigmoid_cross_entropy() -> None:
    logits = torch.tensor([[[[0.0, 2.0]]]])
    target = torch.tensor([[[[1.0, 0.0]]]])
    expected = (np.log(2.0) + np.log(1 + np.exp(2.0))) / 2
    assert abs(float(xseg_loss(logits, target)) - expected) < 1e-6


def test_iou() -> None:
    a = np.zeros((10, 10))
    b = np.zeros((10, 10))
    a[:, :5] = 1
    b[:, :4] = 1
    assert iou(a, b) == pytest.approx(40 / 50)
    assert iou(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0


def test_train_resume_and_config(labelled_faceset: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    cfg = XSegTrainConfig(facesets=[str(labelled_faceset)], model_dir=str(model_dir), max_iters=4, **TINY)
    result = train_xseg(cfg, progress=False)
    assert (result.iteration, result.stop_reason) == (4, "max_iters")
    state = load_checkpoint(model_dir)
    assert state["kind"] == "xseg" and state["iteration"] == 4
    assert state["config"]["xseg"] == {"resolution": 64, "base_ch": 4, "in_ch": 3, "out_ch": 1}
    assert isinstance(state["optimizer"]["param_groups"][0]["alpha"], float)  # RMSprop
    assert json.loads((model_dir / "config.json").read_text())["lr"] == 1e-4
    # resume: continues the count, keeps the network; a contradicting network option is refused
    again = train_xseg(load_xseg_config(None, {"facesets": [str(labelled_faceset)], "model_dir": str(model_dir),
                                               "max_iters": 6, "device": "cpu", "preview_every": 0}), progress=False)
    assert (again.iteration, again.iterations_this_run) == (6, 2)
    assert load_checkpoint(model_dir)["config"]["base_ch"] == 4
    with pytest.raises(DflError, match="base_ch is 4, base_ch 8 was given"):
        train_xseg(load_xseg_config(None, {"facesets": [str(labelled_faceset)], "model_dir": str(model_dir),
                                           "base_ch": 8, "max_iters": 8}))


def test_resume_is_exact(labelled_faceset: Path, tmp_path: Path) -> None:
    common = dict(facesets=[str(labelled_faceset)], **TINY)
    train_xseg(XSegTrainConfig(model_dir=str(tmp_path / "a"), max_iters=4, **common), progress=False)
    train_xseg(XSegTrainConfig(model_dir=str(tmp_path / "b"), max_iters=2, **common), progress=False)
    train_xseg(XSegTrainConfig(model_dir=str(tmp_path / "b"), max_iters=4, **common), progress=False)
    a, b = load_checkpoint(tmp_path / "a")["model"], load_checkpoint(tmp_path / "b")["model"]
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def test_sigterm_saves_and_stops(labelled_faceset: Path, tmp_path: Path) -> None:
    trainer = XSegTrainer(XSegTrainConfig(facesets=[str(labelled_faceset)], model_dir=str(tmp_path / "m"),
                                          max_iters=10**6, **TINY), progress=False)
    step = trainer.step

    def step_then_signal() -> float:
        loss = step()
        if trainer.iteration == 3:
            threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGTERM)).start()
            threading.Event().wait(0.2)
        return loss

    trainer.step = step_then_signal
    try:
        result = trainer.run()
    finally:
        trainer.close()
    assert result.stop_reason == "signal" and 3 <= result.iteration < 10
    assert load_checkpoint(tmp_path / "m")["iteration"] == result.iteration


def test_config_file_and_set(tmp_path: Path) -> None:
    path = tmp_path / "xseg.toml"
    path.write_text('facesets = ["a"]\nbatch_size = 8\nmax_time = "10m"\n')
    cfg = load_xseg_config(path, {"model_dir": "m"}, ["lr=5e-5", "background_swap=0.3"])
    assert (cfg.batch_size, cfg.max_time, cfg.lr, cfg.background_swap) == (8, 600.0, 5e-5, 0.3)
    with pytest.raises(DflError, match="unknown XSeg option 'bogus'"):
        load_xseg_config(None, {}, ["bogus=1"])
    with pytest.raises(DflError, match="multiple of 64"):
        load_xseg_config(None, {"resolution": 100})


def test_augmentation_keeps_image_and_mask_aligned() -> None:
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(4, 1, 64, 64)
    masks[:, :, 16:48, 20:44] = 1
    faces = torch.full((4, 3, 64, 64), 0.2) + masks * 0.6  # bright where the mask is
    cfg = XSegAugmentConfig(background_swap=0.0, hsv_power=0.0, levels=0.0, degrade=0.0)
    images, target = augment_batch(faces, masks, cfg, g)
    inside = images[:, 0][target[:, 0] > 0.99]
    outside = images[:, 0][target[:, 0] < 0.01]
    assert float(inside.min()) > 0.75 and float(outside.max()) < 0.25
    moved = (target - masks).abs().mean(dim=(1, 2, 3))
    assert float(moved.max()) > 0.01  # the geometry did change something


def test_background_swap_keeps_the_face() -> None:
    g = torch.Generator().manual_seed(1)
    masks = torch.zeros(2, 1, 8, 8)
    masks[:, :, 2:6, 2:6] = 1
    faces = torch.stack([torch.full((3, 8, 8), 0.1), torch.full((3, 8, 8), 0.9)])
    out = background_swap(faces, masks, 1.0, g)
    torch.testing.assert_close(out * masks, faces * masks)
    assert float((out[0] * (1 - masks[0])).max()) == pytest.approx(0.9)  # sample 0's background is sample 1's


def test_degradations_stay_close_and_jpeg_is_blocky() -> None:
    g = torch.Generator().manual_seed(2)
    faces = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(3)) * 0.5 + 0.25
    masks = torch.ones(4, 1, 64, 64)
    images, _ = augment_batch(faces, masks, XSegAugmentConfig(background_swap=0, random_warp=False, rotation=0,
                                                              scale=0, shift=0, flip_prob=0, hsv_power=0, levels=0,
                                                              degrade=1.0), g)
    assert 0.02 < float((images - faces).abs().mean()) < 0.3
    smooth = torch.linspace(0, 1, 16).repeat(1, 3, 16, 1)
    coarse = jpeg_like(smooth, 0.2)
    assert float((coarse - smooth).abs().max()) > 0.01  # quantised
    torch.testing.assert_close(jpeg_like(smooth, 1e-9), smooth, atol=1e-5, rtol=0)


def test_two_cpu_ranks_stay_in_sync(labelled_faceset: Path, tmp_path: Path) -> None:
    """DDP under torchrun (gloo on the CPU): both ranks train, rank 0 alone writes, parameters stay identical."""
    model_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
           "dfl_vfx.cli.main", "xseg", "train", str(labelled_faceset), "--model-dir", str(model_dir),
           "--resolution", str(TINY["resolution"]), "--base-ch", str(TINY["base_ch"]), "--batch-size", "2",
           "--max-iters", "3", "--device", "cpu", "--preview-every", "0", "--no-progress"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DDP: 2 ranks, max parameter difference 0" in (model_dir / "train.log").read_text()
    state = load_checkpoint(model_dir)
    assert state["iteration"] == 3 and sorted(state["rng"]) == ["0", "1"]
