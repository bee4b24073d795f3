"""The training loop: resume or initialise, step, save, preview, log, stop cleanly.

Farm behaviour: nothing prompts; checkpoints are written atomically every ``save_every`` and at exit;
SIGTERM or SIGINT finishes the current iteration, saves and exits with code 0, and a rerun of the same command
resumes from the checkpoint. In deterministic mode an interrupted and resumed run ends with the same weights as
an uninterrupted one. Under torchrun (``WORLD_SIZE`` > 1) every rank trains on its own batches with DDP
averaging gradients, and rank 0 alone writes files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from dfl_vfx import __version__
from dfl_vfx.color.ocio import WORKING_SPACE
from dfl_vfx.errors import DflError
from dfl_vfx.faceset import Faceset
from dfl_vfx.io.atomic import remove_stale_temps
from dfl_vfx.io.outputs import check_output_dir
from dfl_vfx.models.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    model_config_of,
    save_checkpoint,
    snapshot,
    write_config_json,
)
from dfl_vfx.models.discriminators import CodeDiscriminator, UNetPatchDiscriminator
from dfl_vfx.models.losses import LossConfig, bce_with_logits, reconstruction_loss, style_losses, total_variation
from dfl_vfx.models.saehd import SAEHD
from dfl_vfx.progress import progress_bar
from trainer.augment import AugmentConfig, make_samples, uniform_yaw_weights
from trainer.config import TrainConfig
from trainer.data import BatchSampler, load_samples
from trainer.model_options import FacesetSummary, resolve_model_options, short_face_type
from trainer.optim import make_optimizer
from trainer.preview import write_loss_plot, write_preview

log = logging.getLogger("dfl_vfx.train")

LOG_FILE = "train.log"
PREVIEW = "preview.png"
LOSS_PLOT = "loss.png"


@dataclass
class TrainResult:
    """How a run ended."""

    iteration: int
    iterations_this_run: int
    seconds: float
    stop_reason: str  # "max_iters", "max_time", "signal"
    last_losses: dict[str, float] = field(default_factory=dict)

    @property
    def iterations_per_second(self) -> float:
        return self.iterations_this_run / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_kind: str) -> _Dist:
    """Join the process group when launched by torchrun (RANK/WORLD_SIZE set)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _resolve_device(cfg: TrainConfig, ddp: _Dist) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise DflError("device cuda asked for, but no CUDA GPU is visible; use --device cpu")
        return torch.device("cuda", ddp.local_rank)
    return torch.device("cpu")


def _precision(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Autocast dtype, or None for full fp32."""
    kind = cfg.precision if cfg.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[kind]


class _Adversary:
    """A discriminator with its own optimiser: learns real vs fake, and scores fakes for the generator."""

    def __init__(self, net: torch.nn.Module, device: torch.device, cfg: TrainConfig) -> None:
        self.net = net.to(device)
        self.optimizer = make_optimizer(cfg.optimizer, self.net.parameters(), cfg.lr, False, cfg.seed + 17)

    @staticmethod
    def _outputs(result: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return result if isinstance(result, tuple) else (result,)

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """How far the fake is from fooling the discriminator (gradients reach the generator only)."""
        self.net.requires_grad_(False)
        loss = sum(bce_with_logits(o, True) for o in self._outputs(self.net(fake)))
        self.net.requires_grad_(True)
        return loss

    def step(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        """One discriminator update on detached inputs."""
        outputs_real = self._outputs(self.net(real.detach()))
        outputs_fake = self._outputs(self.net(fake.detach()))
        loss = sum(bce_with_logits(o, True) for o in outputs_real) + sum(
            bce_with_logits(o, False) for o in outputs_fake)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def state(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])


class Trainer:
    """One training run of one model folder."""

    def __init__(self, cfg: TrainConfig, progress: bool | None = None) -> None:
        cfg.validate()
        if not cfg.model_dir:
            raise DflError("--model-dir is required: the folder that holds (or will hold) the model")
        if not cfg.src or not cfg.dst:
            raise DflError("--src and --dst facesets are required (see `dfl-vfx extract`)")
        self.model_dir = check_output_dir(cfg.model_dir, "--model-dir")  # before any work
        self.progress = progress
        self.ddp = _init_distributed("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")
        if self.ddp.main:  # leftovers of a killed save (a checkpoint temp is the model's size)
            remove_stale_temps(self.model_dir, recursive=True)
        facesets = [FacesetSummary(role, Path(root), Faceset.open(root).info)
                    for role, root in (("src", cfg.src), ("dst", cfg.dst))]
        path = checkpoint_path(self.model_dir)
        self._resume_state = load_checkpoint(path) if path.is_file() else None
        model_cfg, existing = resolve_model_options(cfg, facesets, self._resume_state)
        cfg = dataclasses.replace(cfg, model=model_cfg)
        cfg.validate(model_final=True)
        self.cfg = cfg
        self.run_cfg = cfg.effective()
        self.device = _resolve_device(cfg, self.ddp)
        self.autocast_dtype = _precision(cfg, self.device)
        self._stop: str | None = None
        self._seed_everything(cfg.seed + self.ddp.rank)
        self.src = load_samples(cfg.src, model_cfg.resolution, model_cfg.face_type, "src", progress)
        self.dst = load_samples(cfg.dst, model_cfg.resolution, model_cfg.face_type, "dst", progress)
        self.model = SAEHD(model_cfg).to(self.device)
        if self.device.type == "cuda" and cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(
            self.run_cfg.optimizer, self.model.parameters(), self.run_cfg.lr, self.run_cfg.lr_dropout, cfg.seed
        )
        self.scaler = torch.amp.GradScaler(enabled=self.autocast_dtype == torch.float16)
        self.adversaries: dict[str, _Adversary] = {}
        if self.run_cfg.gan_power > 0:  # DeepFaceLab's patch GAN on the src reconstruction
            patch = self.run_cfg.gan_patch_size or model_cfg.resolution // 8
            net = UNetPatchDiscriminator(3, patch_size=patch, base_dims=self.run_cfg.gan_dims)
            self.adversaries["gan"] = _Adversary(net, self.device, self.run_cfg)
        if self.run_cfg.true_face_power > 0:  # TrueFace: src codes should be indistinguishable from dst codes
            channels, code_res, _ = self.model.code_shape
            self.adversaries["true_face"] = _Adversary(CodeDiscriminator(channels, code_res), self.device, self.run_cfg)
        self.sample_generator = torch.Generator().manual_seed(cfg.seed * 7919 + 1 + self.ddp.rank)
        self.augment_generator = torch.Generator(device=self.device).manual_seed(cfg.seed * 7919 + 2 + self.ddp.rank)
        self.iteration = 0
        self.history: dict[str, list[float]] = {"src": [], "dst": []}
        if self.ddp.main:  # inputs are valid by now: the model folder and its log may be created
            self.model_dir.mkdir(parents=True, exist_ok=True)
            self._attach_log_file()
            log.info("%s model: %s %d px %s (ae %d, e %d, d %d)", "existing" if existing else "new",
                     model_cfg.archi, model_cfg.resolution, short_face_type(model_cfg.face_type), model_cfg.ae_dims,
                     model_cfg.e_dims, model_cfg.d_dims)
        self._restore_or_initialise()
        self.train_model = self.model
        if self.ddp.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)
        weights = uniform_yaw_weights(self.src.yaws) if self.run_cfg.uniform_yaw else None
        dst_weights = uniform_yaw_weights(self.dst.yaws) if self.run_cfg.uniform_yaw else None
        self.src_sampler = BatchSampler(len(self.src), self.sample_generator, weights)
        self.dst_sampler = BatchSampler(len(self.dst), self.sample_generator, dst_weights)
        self.loss_cfg = LossConfig(
            resolution=model_cfg.resolution, masked_training=self.run_cfg.masked_training,
            eyes_mouth_prio=self.run_cfg.eyes_mouth_prio, face_style_power=self.run_cfg.face_style_power,
            bg_style_power=self.run_cfg.bg_style_power,
        )
        common = dict(random_warp=self.run_cfg.random_warp, blur_out_mask=self.run_cfg.blur_out_mask)
        self.src_augment = AugmentConfig(random_flip=self.run_cfg.random_src_flip, ct_mode=self.run_cfg.ct_mode,
                                         hsv_power=self.run_cfg.random_hsv_power, **common)  # src only, as DFL
        self.dst_augment = AugmentConfig(random_flip=self.run_cfg.random_dst_flip, **common)

    # ------------------------------------------------------------------------------------------------------
    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        if self.cfg.deterministic and self.device.type == "cuda":
            # CUDA kernels (atomics, cuDNN autotuning) are not reproducible unless told to be. PyTorch's CPU
            # kernels already are for a fixed thread count, and forcing the deterministic set there swaps
            # oneDNN convolutions for reference ones about 30x slower, so the CPU path is left as it is.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False

    def _restore_or_initialise(self) -> None:
        path = checkpoint_path(self.model_dir)
        state, self._resume_state = self._resume_state, None  # the run's config now carries the stored options
        if state is not None:
            self.model.load_state_dict(state["model"])
            if state["config"].get("pretrain") and not self.cfg.pretrain:
                # DeepFaceLab: leaving pretraining restarts the count with fresh inter blocks and optimiser
                self.model.reset_parameters(self.model.inter_modules())
                if self.ddp.main:
                    log.info("pretraining ended: iteration reset to 0, %s re-initialised",
                             ", ".join(self.model.inter_modules()))
                return
            self.optimizer.load_state_dict(state["optimizer"])
            self.iteration = int(state["iteration"])
            self.history = {k: list(v) for k, v in state["history"].items()}
            for name, saved in state.get("adversaries", {}).items():
                if name in self.adversaries:  # a discriminator switched on later starts fresh
                    self.adversaries[name].load(saved)
            rng = state["rng"]
            rank_key = str(self.ddp.rank)
            if rank_key in rng:
                self.sample_generator.set_state(rng[rank_key]["sample"])
                self.augment_generator.set_state(rng[rank_key]["augment"])
                torch.set_rng_state(rng[rank_key]["torch"])
            if self.ddp.main:
                log.info("resumed %s at iteration %d", path, self.iteration)
            return
        if self.cfg.init_from:
            self._init_from(self.cfg.init_from)

    def _init_from(self, source: str) -> None:
        state = load_checkpoint(source)
        other = model_config_of(state, source)
        mine = self.cfg.model
        if dataclasses.replace(other, face_type=mine.face_type) != mine:
            raise DflError(
                f"--init-from {source}: its model ({other.archi}, {other.resolution} px, ae {other.ae_dims}, "
                f"e {other.e_dims}, d {other.d_dims}) differs from this one ({mine.archi}, {mine.resolution} px, "
                f"ae {mine.ae_dims}, e {mine.e_dims}, d {mine.d_dims}); weights cannot be reused"
            )
        self.model.load_state_dict(state["model"])
        if self.cfg.reinit_inter:
            self.model.reset_parameters(self.model.inter_modules())
        if self.ddp.main:
            log.info("initialised from %s%s", source, " with fresh inter blocks" if self.cfg.reinit_inter else "")

    # ------------------------------------------------------------------------------------------------------
    def _samples(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One augmented src batch and one dst batch; src may be recoloured toward this dst batch (ct_mode)."""
        b = self.cfg.batch_size
        dst_faces, dst_masks, dst_eyes_mouth = self.dst.batch(self.dst_sampler.sample(b), self.device)
        src = make_samples(*self.src.batch(self.src_sampler.sample(b), self.device), self.src_augment,
                           self.augment_generator, color_reference=(dst_faces, dst_masks))
        dst = make_samples(dst_faces, dst_masks, dst_eyes_mouth, self.dst_augment, self.augment_generator)
        return src, dst

    def step(self) -> dict[str, float]:
        """One optimisation step on one src batch and one dst batch."""
        self.train_model.train()
        src, dst = self._samples()
        if self.device.type == "cuda" and self.cfg.channels_last:
            src["input"] = src["input"].contiguous(memory_format=torch.channels_last)
            dst["input"] = dst["input"].contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            out = self.train_model(src["input"], dst["input"])
            loss_src, _ = reconstruction_loss(out["src_rgb"], src["target"], out["src_mask"], src["mask"],
                                              self.loss_cfg, src["eyes_mouth"])
            loss_dst, _ = reconstruction_loss(out["dst_rgb"], dst["target"], out["dst_mask"], dst["mask"],
                                              self.loss_cfg, dst["eyes_mouth"])
            total = loss_src + loss_dst
            if self.run_cfg.face_style_power > 0 or self.run_cfg.bg_style_power > 0:
                total = total + style_losses(out["swap_rgb"], dst["target"], out["swap_mask"], dst["mask"],
                                             self.loss_cfg)
            gan_real = gan_fake = None
            if "gan" in self.adversaries:
                mask = src["mask"] if self.run_cfg.masked_training else torch.ones_like(src["mask"])
                gan_real, gan_fake = src["target"] * mask, out["src_rgb"] * mask
                total = total + self.run_cfg.gan_power * self.adversaries["gan"].generator_loss(gan_fake)
                if self.run_cfg.masked_training:  # DFL: suppress GAN dots outside the face
                    outside = 1.0 - mask
                    total = total + 1e-6 * total_variation(out["src_rgb"]).mean() + 0.02 * torch.mean(
                        ((out["src_rgb"] - src["target"]) * outside) ** 2)
            if "true_face" in self.adversaries:
                total = total + self.run_cfg.true_face_power * self.adversaries["true_face"].generator_loss(
                    out["src_code"])
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.run_cfg.clipgrad:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if gan_fake is not None:
            self.adversaries["gan"].step(gan_real, gan_fake)
        if "true_face" in self.adversaries:
            self.adversaries["true_face"].step(out["dst_code"], out["src_code"])
        self.iteration += 1
        losses = {"src": float(loss_src.detach()), "dst": float(loss_dst.detach())}
        if not all(np.isfinite(list(losses.values()))):
            raise DflError(
                f"loss became {losses} at iteration {self.iteration}; lower lr, enable clipgrad, or resume from "
                "the last checkpoint"
            )
        for key, value in losses.items():
            self.history[key].append(value)
        self._last_batch = (src, dst, out)
        return losses

    # ------------------------------------------------------------------------------------------------------
    def state(self) -> dict:
        rng = {"sample": self.sample_generator.get_state(), "augment": self.augment_generator.get_state().cpu(),
               "torch": torch.get_rng_state()}
        all_rng = {str(self.ddp.rank): rng}
        if self.ddp.world > 1:
            gathered: list = [None] * self.ddp.world
            dist.all_gather_object(gathered, rng)
            all_rng = {str(r): g for r, g in enumerate(gathered)}
        return {
            "iteration": self.iteration,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "adversaries": {name: adversary.state() for name, adversary in self.adversaries.items()},
            "rng": all_rng,
            "config": self.cfg.to_dict(),
            "dfl_vfx_version": __version__,
        }

    def save(self) -> None:
        """Checkpoint (atomic) from rank 0; every rank takes part in gathering RNG states."""
        state = self.state()
        if self.ddp.main:
            save_checkpoint(self.model_dir, state)
            log.info("saved %s at iteration %d", checkpoint_path(self.model_dir), self.iteration)

    def write_previews(self) -> None:
        if not self.ddp.main or not hasattr(self, "_last_batch"):
            return
        src, dst, _ = self._last_batch
        self.model.eval()
        with torch.no_grad():
            out = self.model(src["target"][:4], dst["target"][:4])
        columns = {
            "src": src["target"], "src recon": out["src_rgb"], "dst": dst["target"], "dst recon": out["dst_rgb"],
            "swap": out["swap_rgb"], "src mask": out["src_mask"], "dst mask": out["dst_mask"],
            "swap mask": out["swap_mask"],
        }
        try:  # a preview is a convenience: a full disk here must not stop (or fail) a run whose checkpoint is saved
            write_preview(self.model_dir / PREVIEW, columns, WORKING_SPACE, self.iteration)
            write_loss_plot(self.model_dir / LOSS_PLOT, self.history)
        except (OSError, DflError) as exc:
            log.warning("preview not written in %s (%s); training goes on", self.model_dir, exc)

    def rank_spread(self) -> float:
        """Largest difference of any parameter between ranks (0 when DDP keeps them in sync)."""
        flat = torch.cat([p.detach().float().flatten() for p in self.model.parameters()])
        high, low = flat.clone(), flat.clone()
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        return float((high - low).max())

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop = "signal"

    def _agree_to_stop(self, reason: str | None) -> str | None:
        """In DDP every rank stops at the same iteration if any rank wants to."""
        if self.ddp.world <= 1:
            return reason
        flag = torch.tensor([0 if reason is None else 1 if reason == "signal" else 2], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return {0: None, 1: "signal", 2: reason or "max_time"}[int(flag.item())]

    # ------------------------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.cfg
        if self.ddp.main:
            write_config_json(self.model_dir, cfg.to_dict())
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        start = time.monotonic()
        last_save = start
        first = self.iteration
        losses: dict[str, float] = {}
        # a bar on a terminal; in a redirected log the loop's own line every log_every iterations is the report
        show = self.ddp.main and self.progress is not False and sys.stderr.isatty()
        bar = progress_bar(total=cfg.max_iters or None, initial=self.iteration, unit="it", desc="train",
                           enabled=None if show else False)
        reason: str | None = None
        try:
            while True:
                if cfg.max_iters and self.iteration >= cfg.max_iters:
                    reason = "max_iters"
                elif cfg.max_time and time.monotonic() - start >= cfg.max_time:
                    reason = "max_time"
                reason = self._agree_to_stop(reason or self._stop)
                if reason:
                    break
                losses = self.step()
                bar.update(1)
                bar.set_postfix(src=f"{losses['src']:.4f}", dst=f"{losses['dst']:.4f}")
                if self.ddp.main and self.iteration % cfg.log_every == 0:
                    rate = (self.iteration - first) / max(time.monotonic() - start, 1e-9)
                    log.info("iteration %d src %.5f dst %.5f (%.2f it/s)", self.iteration, losses["src"],
                             losses["dst"], rate)
                if cfg.preview_every and self.iteration % cfg.preview_every == 0:
                    self.write_previews()
                if time.monotonic() - last_save >= cfg.save_every:
                    self.save()
                    last_save = time.monotonic()
                if cfg.snapshot_every and self.iteration % cfg.snapshot_every == 0:
                    self.save()
                    if self.ddp.main:
                        snapshot(self.model_dir, self.iteration)
                    last_save = time.monotonic()
        finally:
            bar.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        self.save()
        self.write_previews()
        if self.ddp.world > 1:
            spread = self.rank_spread()
            if self.ddp.main:
                log.info("DDP: %d ranks, max parameter difference %g", self.ddp.world, spread)
        seconds = time.monotonic() - start
        if self.ddp.main:
            log.info("stopped (%s) at iteration %d after %.1f s", reason, self.iteration, seconds)
        return TrainResult(self.iteration, self.iteration - first, seconds, reason or "signal", losses)

    def _attach_log_file(self) -> None:
        path = str(self.model_dir / LOG_FILE)
        if any(getattr(h, "baseFilename", None) == os.path.abspath(path) for h in log.handlers):
            return
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        self._log_handler = handler

    def close(self) -> None:
        """Detach train.log (a later run in this process logs to its own folder) and leave the process group
        (with a barrier first: tearing down without one can abort gloo)."""
        handler = getattr(self, "_log_handler", None)
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
            self._log_handler = None
        if self.ddp.world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def train(cfg: TrainConfig, progress: bool | None = None) -> TrainResult:
    """Train until max_iters, max_time or a signal; always leaves a checkpoint."""
    trainer = Trainer(cfg, progress)
    try:
        return trainer.run()
    finally:
        trainer.close()

