"""`dfl-vfx xseg train`: train an XSeg model on the labelled faces of one or more facesets, farm-ready.

Shares the face trainer's farm machinery (trainer/ and dfl_vfx.models.checkpoint): a TOML config plus flags and
``--set``, the resolved config written beside the model, atomic checkpoints every ``save_every`` and at exit,
resume by rerunning the same command, SIGTERM/SIGINT finish the step, save and exit 0, progress and log lines,
preview.png and loss.png, and DDP under torchrun (rank 0 writes). Training follows the reference: RMSprop at
lr 1e-4, batch 4, sigmoid cross-entropy on the logits, only faces that carry labels (polygons or imported mattes).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import signal
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from dfl_vfx import __version__
from dfl_vfx.color.ocio import WORKING_SPACE
from dfl_vfx.errors import DflError
from dfl_vfx.faceset import Faceset
from dfl_vfx.io.atomic import remove_stale_temps
from dfl_vfx.io.outputs import check_output_dir
from dfl_vfx.models.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint, write_config_json
from dfl_vfx.progress import progress_bar
from dfl_vfx.xseg.augment import XSegAugmentConfig, augment_batch
from dfl_vfx.xseg.labels import label_mask
from dfl_vfx.xseg.model import KIND, XSeg, XSegConfig
from trainer.config import _coerce, parse_duration
from trainer.data import BatchSampler
from trainer.loop import TrainResult, _init_distributed, _precision, _resolve_device
from trainer.preview import write_loss_plot, write_preview

log = logging.getLogger("dfl_vfx.xseg.train")

LOG_FILE = "train.log"
PREVIEW = "preview.png"
LOSS_PLOT = "loss.png"
NETWORK_KEYS = ("resolution", "base_ch")


@dataclass
class XSegTrainConfig:
    """Everything `dfl-vfx xseg train` can be told; defaults follow the reference's XSeg."""

    facesets: list[str] = field(default_factory=list)
    model_dir: str = ""
    resolution: int = 256
    base_ch: int = 32
    batch_size: int = 4
    max_iters: int = 0
    max_time: float = 0.0
    save_every: float = 25 * 60.0
    preview_every: int = 200
    log_every: int = 10
    lr: float = 1e-4
    # augmentation
    background_swap: float = 0.5
    random_warp: bool = True
    random_flip: bool = True
    hsv_power: float = 0.1
    levels: float = 0.1
    degrade: float = 0.25
    # machine
    device: str = "auto"
    precision: str = "fp32"
    seed: int = 0
    # options given explicitly (network keys: a resumed model refuses contradicting ones); not saved
    given: set[str] = field(default_factory=set, compare=False, repr=False)

    RANGES = {"batch_size": (1, 4096), "max_iters": (0, 10**12), "preview_every": (0, 10**12),
              "log_every": (1, 10**12), "lr": (1e-8, 1.0), "background_swap": (0.0, 1.0), "hsv_power": (0.0, 0.3),
              "levels": (0.0, 0.3), "degrade": (0.0, 1.0)}
    CHOICES = {"device": ("auto", "cpu", "cuda"), "precision": ("fp32", "bf16", "fp16")}
    DURATIONS = ("max_time", "save_every")

    def validate(self) -> None:
        for name, choices in self.CHOICES.items():
            if getattr(self, name) not in choices:
                raise DflError(f"{name} {getattr(self, name)!r} is unknown; use one of {', '.join(choices)}")
        for name, (lo, hi) in self.RANGES.items():
            if not lo <= getattr(self, name) <= hi:
                raise DflError(f"{name} {getattr(self, name)} is out of range {lo}..{hi}")
        if self.save_every <= 0:
            raise DflError("save_every must be positive (e.g. 25m)")
        self.network().validate()

    def network(self) -> XSegConfig:
        return XSegConfig(resolution=self.resolution, base_ch=self.base_ch)

    def augment(self) -> XSegAugmentConfig:
        return XSegAugmentConfig(background_swap=self.background_swap, random_warp=self.random_warp,
                                 flip_prob=0.5 if self.random_flip else 0.0, hsv_power=self.hsv_power,
                                 levels=self.levels, degrade=self.degrade)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "given"}


_FIELDS = {f.name for f in dataclasses.fields(XSegTrainConfig) if f.name != "given"}


def apply_options(cfg: XSegTrainConfig, data: dict[str, Any], source: str) -> None:
    """Set options from a mapping (TOML, flags, --set); unknown keys are refused naming ``source``."""
    for key, value in data.items():
        if key not in _FIELDS:
            raise DflError(f"{source}: unknown XSeg option {key!r}; valid options: {', '.join(sorted(_FIELDS))}")
        if key == "facesets":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DflError(f"{source}: facesets must be a list of faceset folders")
            cfg.facesets = list(value)
        elif key in XSegTrainConfig.DURATIONS:
            setattr(cfg, key, parse_duration(value, key))
        else:
            setattr(cfg, key, _coerce(value, getattr(XSegTrainConfig(), key), key, source))
        cfg.given.add(key)


def load_xseg_config(path: str | Path | None, overrides: dict[str, Any], set_items: list[str] | None = None
                     ) -> XSegTrainConfig:
    """Defaults, then the TOML file (when given), then ``overrides`` (flags), then ``KEY=VALUE`` items; validated."""
    cfg = XSegTrainConfig()
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DflError(f"--config {path}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise DflError(f"--config {path}: not valid TOML ({exc})") from None
        apply_options(cfg, data, str(path))
    apply_options(cfg, overrides, "command line")
    items = {}
    for item in set_items or []:
        if "=" not in item:
            raise DflError(f"--set {item!r}: expected KEY=VALUE, e.g. --set batch_size=8")
        key, value = (part.strip() for part in item.split("=", 1))
        items[key] = value
    apply_options(cfg, items, "--set")
    cfg.validate()
    return cfg


# ----------------------------------------------------------------------------------------------------------
@dataclass
class LabelledFaces:
    """Labelled faces of the training facesets, resized to the network: float16 tensors on the CPU."""

    faces: torch.Tensor  # (N, 3, R, R)
    masks: torch.Tensor  # (N, 1, R, R)
    names: list[str]
    face_type: str

    def __len__(self) -> int:
        return self.faces.shape[0]


def load_labelled_faces(roots: list[str], resolution: int, progress: bool | None = None) -> LabelledFaces:
    """Every labelled face of ``roots`` at ``resolution``; a faceset without labels, faces smaller than the network
    or facesets of different face types are one-line DflErrors."""
    if not roots:
        raise DflError("name at least one faceset with labelled faces (dfl-vfx xseg train FACESET --model-dir DIR)")
    faces, masks, names, face_types = [], [], [], set()
    for root in roots:
        faceset = Faceset.open(root)
        records = faceset.records()
        labelled = [(r, m) for r in records if (m := label_mask(faceset, r)) is not None]
        if not labelled:
            raise DflError(f"{faceset.root}: none of its {len(records)} faces has a label; draw some with "
                           "`dfl-vfx xseg edit` or import mattes with `dfl-vfx xseg import-mattes`")
        if faceset.info.size < resolution:
            raise DflError(f"{faceset.root}: its faces are {faceset.info.size} px, smaller than the XSeg network's "
                           f"{resolution} px; use --resolution {max(64, faceset.info.size // 64 * 64)} or "
                           "extract larger faces")
        face_types.add(faceset.info.face_type)
        for record, mask in progress_bar(labelled, desc=f"load {faceset.root.name}", unit="face", enabled=progress):
            rgb = faceset.read(record)
            if rgb.shape[0] != resolution:
                rgb = cv2.resize(rgb, (resolution, resolution), interpolation=cv2.INTER_AREA)
                mask = cv2.resize(mask, (resolution, resolution), interpolation=cv2.INTER_AREA)
            faces.append(torch.from_numpy(np.ascontiguousarray(np.clip(rgb, 0, 1).transpose(2, 0, 1))))
            masks.append(torch.from_numpy(np.ascontiguousarray(mask))[None])
            names.append(f"{faceset.root.name}/{record.name}")
        log.info("%s: %d labelled faces of %d", faceset.root, len(labelled), len(records))
    if len(face_types) > 1:
        raise DflError(f"the facesets hold different face types ({', '.join(sorted(face_types))}); train one XSeg "
                       "model per face type")
    return LabelledFaces(torch.stack(faces).half(), torch.stack(masks).half(), names, face_types.pop())


def xseg_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sigmoid cross-entropy on the logits, mean over pixels and batch (the reference's XSeg loss)."""
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def iou(prediction: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor, threshold: float = 0.5) -> float:
    """Intersection over union of two masks binarised at ``threshold`` (1.0 when both are empty)."""
    p = np.asarray(prediction) > threshold
    t = np.asarray(truth) > threshold
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, t).sum() / union)


class XSegTrainer:
    """One XSeg training run of one model folder."""

    def __init__(self, cfg: XSegTrainConfig, progress: bool | None = None) -> None:
        cfg.validate()
        if not cfg.model_dir:
            raise DflError("--model-dir is required: the folder that holds (or will hold) the XSeg model")
        self.model_dir = check_output_dir(cfg.model_dir, "--model-dir")
        self.progress = progress
        self.ddp = _init_distributed("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")
        if self.ddp.main:
            remove_stale_temps(self.model_dir, recursive=True)
        path = checkpoint_path(self.model_dir)
        resume = load_checkpoint(path) if path.is_file() else None
        if resume is not None:
            cfg = self._resumed_config(cfg, resume, path)
        self.cfg = cfg
        self.device = _resolve_device(cfg, self.ddp)
        self.autocast_dtype = _precision(cfg, self.device)
        self._stop: str | None = None
        self._seed_everything(cfg.seed + self.ddp.rank)
        self.data = load_labelled_faces(cfg.facesets, cfg.resolution, progress)
        if resume is not None and resume["config"]["face_type"] != self.data.face_type:
            raise DflError(f"{path}: this XSeg model was trained on {resume['config']['face_type']} faces, the "
                           f"facesets hold {self.data.face_type}; use a new --model-dir")
        self.model = XSeg(cfg.network()).to(self.device)
        self.optimizer = torch.optim.RMSprop(self.model.parameters(), lr=cfg.lr)
        self.sample_generator = torch.Generator().manual_seed(cfg.seed * 7919 + 1 + self.ddp.rank)
        self.augment_generator = torch.Generator(device=self.device).manual_seed(cfg.seed * 7919 + 2 + self.ddp.rank)
        self.iteration = 0
        self.history: dict[str, list[float]] = {"xseg": []}
        if self.ddp.main:
            self.model_dir.mkdir(parents=True, exist_ok=True)
            self._attach_log_file()
            log.info("%s XSeg model: %d px, base %d, %s faces; %d labelled faces", "existing" if resume else "new",
                     cfg.resolution, cfg.base_ch, self.data.face_type, len(self.data))
        if resume is not None:
            self._restore(resume, path)
        self.train_model: torch.nn.Module = self.model
        if self.ddp.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.sampler = BatchSampler(len(self.data), self.sample_generator)
        self.augment = cfg.augment()

    @staticmethod
    def _resumed_config(cfg: XSegTrainConfig, state: dict, path: Path) -> XSegTrainConfig:
        if state.get("kind") != KIND:
            raise DflError(f"{path}: holds a face-swap model, not an XSeg model; use another --model-dir")
        stored = state["config"]["xseg"]
        for key in NETWORK_KEYS:
            if key in cfg.given and getattr(cfg, key) != stored[key]:
                raise DflError(f"{path}: the model's {key} is {stored[key]}, {key} {getattr(cfg, key)} was given; "
                               "drop the option to resume or use a new --model-dir")
        return dataclasses.replace(cfg, **{key: int(stored[key]) for key in NETWORK_KEYS}, given=cfg.given)

    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _restore(self, state: dict, path: Path) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.iteration = int(state["iteration"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        rng = state["rng"].get(str(self.ddp.rank))
        if rng is not None:
            self.sample_generator.set_state(rng["sample"])
            self.augment_generator.set_state(rng["augment"])
            torch.set_rng_state(rng["torch"])
        if self.ddp.main:
            log.info("resumed %s at iteration %d", path, self.iteration)

    # ------------------------------------------------------------------------------------------------------
    def step(self) -> float:
        """One optimisation step on one augmented batch; returns the loss."""
        self.train_model.train()
        index = self.sampler.sample(self.cfg.batch_size)
        faces = self.data.faces.index_select(0, index).to(self.device, torch.float32)
        masks = self.data.masks.index_select(0, index).to(self.device, torch.float32)
        images, target = augment_batch(faces, masks, self.augment, self.augment_generator)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            logits, _ = self.train_model(images)
        loss = xseg_loss(logits, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.iteration += 1
        value = float(loss.detach())
        if not np.isfinite(value):
            raise DflError(f"XSeg loss became {value} at iteration {self.iteration}; lower lr or resume from the "
                           "last checkpoint")
        self.history["xseg"].append(value)
        self._last_batch = (images.detach(), target.detach())
        return value

    def state(self) -> dict:
        rng = {"sample": self.sample_generator.get_state(), "augment": self.augment_generator.get_state().cpu(),
               "torch": torch.get_rng_state()}
        all_rng = {str(self.ddp.rank): rng}
        if self.ddp.world > 1:
            gathered: list = [None] * self.ddp.world
            dist.all_gather_object(gathered, rng)
            all_rng = {str(r): g for r, g in enumerate(gathered)}
        config = self.cfg.to_dict() | {"xseg": self.cfg.network().to_dict(), "face_type": self.data.face_type}
        return {"kind": KIND, "iteration": self.iteration, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "history": self.history, "rng": all_rng,
                "config": config, "dfl_vfx_version": __version__}

    def save(self) -> None:
        state = self.state()
        if self.ddp.main:
            save_checkpoint(self.model_dir, state)
            log.info("saved %s at iteration %d", checkpoint_path(self.model_dir), self.iteration)

    def write_previews(self) -> None:
        if not self.ddp.main or not hasattr(self, "_last_batch"):
            return
        images, target = self._last_batch
        self.model.eval()
        with torch.no_grad():
            _, prediction = self.model(images[:4])
        columns = {"face": images, "label": target, "xseg": prediction, "face x xseg": images[:4] * prediction}
        try:
            write_preview(self.model_dir / PREVIEW, columns, WORKING_SPACE, self.iteration)
            write_loss_plot(self.model_dir / LOSS_PLOT, self.history)
        except (OSError, DflError) as exc:
            log.warning("preview not written in %s (%s); training goes on", self.model_dir, exc)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop = "signal"

    def _agree_to_stop(self, reason: str | None) -> str | None:
        if self.ddp.world <= 1:
            return reason
        flag = torch.tensor([0 if reason is None else 1 if reason == "signal" else 2], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return {0: None, 1: "signal", 2: reason or "max_time"}[int(flag.item())]

    def run(self) -> TrainResult:
        cfg = self.cfg
        if self.ddp.main:
            write_config_json(self.model_dir, self.cfg.to_dict() | {"face_type": self.data.face_type})
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        start = last_save = time.monotonic()
        first = self.iteration
        loss = float("nan")
        show = self.ddp.main and self.progress is not False and sys.stderr.isatty()
        bar = progress_bar(total=cfg.max_iters or None, initial=self.iteration, unit="it", desc="xseg train",
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
                loss = self.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if self.ddp.main and self.iteration % cfg.log_every == 0:
                    rate = (self.iteration - first) / max(time.monotonic() - start, 1e-9)
                    log.info("iteration %d loss %.5f (%.2f it/s)", self.iteration, loss, rate)
                if cfg.preview_every and self.iteration % cfg.preview_every == 0:
                    self.write_previews()
                if time.monotonic() - last_save >= cfg.save_every:
                    self.save()
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
        return TrainResult(self.iteration, self.iteration - first, seconds, reason or "signal", {"xseg": loss})

    def rank_spread(self) -> float:
        """Largest difference of any parameter between ranks (0 when DDP keeps them in sync)."""
        flat = torch.cat([p.detach().float().flatten() for p in self.model.parameters()])
        high, low = flat.clone(), flat.clone()
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        return float((high - low).max())

    def _attach_log_file(self) -> None:
        path = os.path.abspath(self.model_dir / LOG_FILE)
        if any(getattr(h, "baseFilename", None) == path for h in log.handlers):
            return
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        self._log_handler = handler

    def close(self) -> None:
        handler = getattr(self, "_log_handler", None)
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
            self._log_handler = None
        if self.ddp.world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def train_xseg(cfg: XSegTrainConfig, progress: bool | None = None) -> TrainResult:
    """Train until max_iters, max_time or a signal; always leaves a checkpoint."""
    trainer = XSegTrainer(cfg, progress)
    try:
        return trainer.run()
    finally:
        trainer.close()
