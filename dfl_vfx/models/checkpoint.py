"""Model folders and checkpoints: atomic saves, safe loads (no pickle code execution), snapshots.

A model folder holds ``checkpoint.pt`` (weights, optimiser, RNG states, iteration, loss history, config),
``config.json`` (the resolved training config, for people), ``snapshots/`` (kept copies), ``train.log``,
``preview.png`` and ``loss.png``. Checkpoints are loaded with ``torch.load(weights_only=True)``, which accepts
tensors and plain containers only, so a tampered file cannot run code.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from dfl_vfx.errors import DflError
from dfl_vfx.io.atomic import atomic_path, write_text_atomic
from dfl_vfx.models.config import ModelConfig

CHECKPOINT = "checkpoint.pt"
CONFIG_JSON = "config.json"
SNAPSHOTS = "snapshots"
FORMAT = "dfl_vfx.checkpoint"
VERSION = 1


def checkpoint_path(model_dir: str | Path) -> Path:
    """``MODEL_DIR/checkpoint.pt``; a path to a ``.pt`` file is returned as it is."""
    path = Path(model_dir)
    return path if path.suffix == ".pt" else path / CHECKPOINT


# what torch.save's zip writer raises when the OS refuses a write (ENOSPC, EFBIG): a RuntimeError such as
# "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598" (torch 2.13) or
# "PytorchStreamWriter failed writing file data/0: file write failed" (older releases)
_TORCH_WRITE_FAILURES = ("inline_container", "PytorchStreamWriter", "file write failed", "unexpected pos")


def _write_failure(exc: BaseException) -> str | None:
    """Why a write failed, for a message, when ``exc`` is a failed write (else None: a bug, re-raised)."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in _TORCH_WRITE_FAILURES):
        return "the write failed: disk full?"
    return None


def _free_space(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 1e6:.0f} MB free there"
    except OSError:
        return "free space unknown"


def save_checkpoint(model_dir: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus format and version) atomically to ``MODEL_DIR/checkpoint.pt``.

    A failed write (disk full, quota, file size limit) leaves the previous checkpoint untouched and no temporary
    file, and is a one-line DflError naming the folder.
    """
    target = checkpoint_path(model_dir)
    had_previous = target.is_file()
    try:
        with atomic_path(target) as tmp:
            torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    except (OSError, RuntimeError) as exc:
        reason = _write_failure(exc)
        if reason is None:
            raise
        kept = ("the previous checkpoint there is intact (work since it is lost)" if had_previous
                else "no checkpoint was saved yet")
        raise DflError(f"cannot write the checkpoint in {target.parent} ({reason}, {_free_space(target.parent)}); "
                       f"{kept}: free space and rerun the same command") from None
    return target


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely; a missing, corrupt or foreign file is a one-line DflError."""
    path = checkpoint_path(path)
    if not path.is_file():
        raise DflError(f"{path}: no checkpoint here; train a model first or check the folder")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or unsafe files
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise DflError(
            f"{path}: cannot load checkpoint ({reason}); restore one from {path.parent / SNAPSHOTS} or start over"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DflError(f"{path}: not a dfl_vfx checkpoint")
    if state.get("version", 0) > VERSION:
        raise DflError(f"{path}: written by a newer dfl_vfx (checkpoint version {state['version']}); upgrade")
    return state


def model_config_of(state: dict[str, Any], source: str = "checkpoint") -> ModelConfig:
    """The network configuration stored in a checkpoint."""
    try:
        return ModelConfig.from_dict(state["config"]["model"])
    except (KeyError, TypeError):
        raise DflError(f"{source}: the checkpoint has no model configuration") from None


def snapshot(model_dir: str | Path, iteration: int) -> Path:
    """Keep a dated copy of the current checkpoint under ``snapshots/``."""
    source = checkpoint_path(model_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = Path(model_dir) / SNAPSHOTS / f"checkpoint_{iteration:08d}_{stamp}.pt"
    try:
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    except OSError as exc:
        raise DflError(f"cannot write the snapshot {target} ({exc.strerror or exc}; {_free_space(target.parent)}); "
                       f"the checkpoint in {model_dir} is saved: free space, or set snapshot_every 0, and rerun "
                       "the same command") from None
    return target


def write_config_json(model_dir: str | Path, config: dict[str, Any]) -> Path:
    """The resolved config, beside the model, for people and tools."""
    path = Path(model_dir) / CONFIG_JSON
    try:
        write_text_atomic(path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise DflError(f"cannot write {path} ({exc.strerror or exc}; {_free_space(path.parent)}); free space "
                       "or fix the folder's permissions") from None
    return path


def load_model(model_dir: str | Path):  # -> tuple[SAEHD, dict]
    """The trained network of a model folder (eval mode, CPU, float32) and its checkpoint state."""
    from dfl_vfx.models.saehd import SAEHD

    state = load_checkpoint(model_dir)
    model = SAEHD(model_config_of(state, str(checkpoint_path(model_dir))))
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0][:160]
        raise DflError(f"{checkpoint_path(model_dir)}: weights do not fit the stored model ({reason})") from None
    return model.eval(), state
