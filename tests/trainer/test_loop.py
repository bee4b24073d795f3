"""Training end to end on CPU: files, exact resume, interruption, bad input, init-from, DDP."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dfl_vfx.errors import DflError
from dfl_vfx.models.checkpoint import load_checkpoint
from trainer.config import load_config
from trainer.loop import Trainer, train


def _cfg(facesets: tuple[Path, Path], model_dir: Path, tiny_model: dict, **kw):
    src, dst = facesets
    options = {"src": str(src), "dst": str(dst), "model_dir": str(model_dir), "batch_size": 2,
               "preview_every": 0, "log_every": 1, "model": tiny_model, **kw}
    return load_config(None, options)


def test_trains_and_writes_the_model_folder(facesets, tmp_path: Path, tiny_model: dict) -> None:
    result = train(_cfg(facesets, tmp_path / "m", tiny_model, max_iters=4), progress=False)
    assert result.iteration == 4 and result.stop_reason == "max_iters"
    for name in ("checkpoint.pt", "config.json", "train.log", "preview.png", "loss.png"):
        assert (tmp_path / "m" / name).is_file(), name
    state = load_checkpoint(tmp_path / "m")
    assert state["iteration"] == 4 and len(state["history"]["src"]) == 4
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model"]["archi"] == "df-ud"
    assert "iteration 4 src" in (tmp_path / "m" / "train.log").read_text()


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(facesets, tmp_path: Path, tiny_model: dict) -> None:
    common = dict(deterministic=True, seed=5, model=tiny_model)
    train(_cfg(facesets, tmp_path / "straight", tiny_model, max_iters=6, **common), progress=False)
    train(_cfg(facesets, tmp_path / "resumed", tiny_model, max_iters=3, **common), progress=False)
    train(_cfg(facesets, tmp_path / "resumed", tiny_model, max_iters=6, **common), progress=False)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert a["iteration"] == b["iteration"] == 6
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=0, msg=key)
    assert a["history"] == b["history"]


def test_sigterm_saves_and_exits_zero_then_resumes(facesets, tmp_path: Path, tiny_model: dict) -> None:
    src, dst = facesets
    model_dir = tmp_path / "m"

    def command(max_iters: int) -> list[str]:
        return [sys.executable, "-m", "trainer", "--src", str(src), "--dst", str(dst), "--model-dir", str(model_dir),
                "--batch-size", "2", "--max-iters", str(max_iters), "--no-progress", "--preview-every", "0",
                "--set", "log_every=1"] + [f"--set=model.{k}={v}" for k, v in tiny_model.items()]

    proc = subprocess.Popen(command(100000), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = model_dir / "train.log"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (log.is_file() and "iteration 3 " in log.read_text()):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    stopped_at = load_checkpoint(model_dir)["iteration"]
    assert stopped_at >= 3 and "stopped (signal)" in out
    again = subprocess.run(command(stopped_at + 2), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(model_dir)["iteration"] == stopped_at + 2
    assert f"resumed {model_dir / 'checkpoint.pt'} at iteration {stopped_at}" in log.read_text()


def test_mismatched_faceset_is_refused_before_training(facesets, tmp_path: Path, tiny_model: dict) -> None:
    tiny_model["face_type"] = "wf"
    with pytest.raises(DflError, match="holds full_face faces but the model is whole_face"):
        train(_cfg(facesets, tmp_path / "m", tiny_model, max_iters=1), progress=False)
    assert not (tmp_path / "m").exists()
    tiny_model.update(face_type="f", resolution=128)
    with pytest.raises(DflError, match="smaller than the model's 128 px"):
        train(_cfg(facesets, tmp_path / "m", tiny_model, max_iters=1), progress=False)


def test_corrupt_checkpoint_is_refused_and_kept(facesets, tmp_path: Path, tiny_model: dict) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DflError, match="cannot load checkpoint"):
        train(_cfg(facesets, tmp_path / "m", tiny_model, max_iters=1), progress=False)
    assert (tmp_path / "m" / "checkpoint.pt").read_bytes() == b"not a checkpoint"


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"format": "dfl_vfx.checkpoint", "x": Exploit()}, tmp_path / "checkpoint.pt")
    with pytest.raises(DflError, match="cannot load checkpoint"):
        load_checkpoint(tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_changed_model_options_on_resume_are_refused(facesets, tmp_path: Path, tiny_model: dict) -> None:
    train(_cfg(facesets, tmp_path / "m", tiny_model, max_iters=1), progress=False)
    tiny_model["ae_dims"] = 64
    with pytest.raises(DflError, match="model.ae_dims asks for ae_dims 64, but the model in .* has ae_dims 32 "
                                       r"\(its checkpoint\); drop model.ae_dims to resume"):
        train(_cfg(facesets, tmp_path / "m", tiny_model, max_iters=2), progress=False)


def test_init_from_with_fresh_inter(facesets, tmp_path: Path, tiny_model: dict) -> None:
    train(_cfg(facesets, tmp_path / "a", tiny_model, max_iters=2), progress=False)
    cfg = _cfg(facesets, tmp_path / "b", tiny_model, max_iters=0, init_from=str(tmp_path / "a"), reinit_inter=True)
    trainer = Trainer(cfg, progress=False)
    a = load_checkpoint(tmp_path / "a")["model"]
    b = trainer.model.state_dict()
    enc = [k for k in a if k.startswith("encoder.")]
    inter = [k for k in a if k.startswith("inter.") and k.endswith("weight")]
    assert enc and inter
    assert all(torch.equal(a[k], b[k]) for k in enc)
    assert not any(torch.equal(a[k], b[k]) for k in inter)
    other = dict(tiny_model, ae_dims=64)
    with pytest.raises(DflError, match="weights cannot be reused"):
        Trainer(_cfg(facesets, tmp_path / "c", other, init_from=str(tmp_path / "a")), progress=False)


def test_two_cpu_ranks_stay_in_sync(facesets, tmp_path: Path, tiny_model: dict) -> None:
    src, dst = facesets
    model_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "trainer",
           "--src", str(src), "--dst", str(dst), "--model-dir", str(model_dir), "--batch-size", "2",
           "--max-iters", "3", "--no-progress", "--device", "cpu", "--preview-every", "0"]
    cmd += [f"--set=model.{k}={v}" for k, v in tiny_model.items()]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    text = (model_dir / "train.log").read_text()
    assert "DDP: 2 ranks, max parameter difference 0" in text
    assert load_checkpoint(model_dir)["iteration"] == 3
    assert sorted(load_checkpoint(model_dir)["rng"]) == ["0", "1"]


def test_optional_terms_train(facesets, tmp_path: Path, tiny_model: dict) -> None:
    cfg = _cfg(facesets, tmp_path / "m", tiny_model, max_iters=2, ct_mode="rct", random_hsv_power=0.05,
               eyes_mouth_prio=True, face_style_power=1.0, bg_style_power=2.0, lr_dropout=True, clipgrad=True,
               uniform_yaw=True, blur_out_mask=True)
    result = train(cfg, progress=False)
    assert result.iteration == 2 and all(v == v and v > 0 for v in result.last_losses.values())


def test_gan_and_true_face_train_and_resume(facesets, tmp_path: Path, tiny_model: dict) -> None:
    cfg = _cfg(facesets, tmp_path / "m", tiny_model, max_iters=2, gan_power=0.1, true_face_power=0.01)
    train(cfg, progress=False)
    state = load_checkpoint(tmp_path / "m")
    assert sorted(state["adversaries"]) == ["gan", "true_face"]
    before = {k: v.clone() for k, v in state["adversaries"]["gan"]["net"].items()}
    cfg = _cfg(facesets, tmp_path / "m", tiny_model, max_iters=3, gan_power=0.1, true_face_power=0.01)
    trainer = Trainer(cfg, progress=False)
    loaded = trainer.adversaries["gan"].net.state_dict()
    assert all(torch.equal(before[k], loaded[k]) for k in before)  # the discriminator resumed too
    trainer.run()
    after = load_checkpoint(tmp_path / "m")["adversaries"]["gan"]["net"]
    assert any(not torch.equal(before[k], after[k]) for k in before)  # and kept learning


def test_snapshots_bf16_and_leaving_pretrain(facesets, tmp_path: Path, tiny_model: dict) -> None:
    train(_cfg(facesets, tmp_path / "m", tiny_model, max_iters=4, snapshot_every=2, precision="bf16",
               pretrain=True), progress=False)
    snapshots = sorted(p.name for p in (tmp_path / "m" / "snapshots").iterdir())
    assert [name[:19] for name in snapshots] == ["checkpoint_00000002", "checkpoint_00000004"]
    pretrained = load_checkpoint(tmp_path / "m")
    trainer = Trainer(_cfg(facesets, tmp_path / "m", tiny_model, max_iters=1), progress=False)
    assert trainer.iteration == 0 and trainer.history == {"src": [], "dst": []}
    now = trainer.model.state_dict()
    encoder = [k for k in now if k.startswith("encoder.")]
    assert encoder and all(torch.equal(now[k], pretrained["model"][k]) for k in encoder)  # kept
    inter = [k for k in now if k.startswith("inter.") and k.endswith("weight")]
    assert not any(torch.equal(now[k], pretrained["model"][k]) for k in inter)
