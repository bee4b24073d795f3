"""Training previews: a PNG grid like DeepFaceLab's preview window, and a loss-history plot."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from dfl_vfx.color.ocio import SRGB_SPACE, ColorTransform  # noqa: E402
from dfl_vfx.io.atomic import atomic_path  # noqa: E402
from dfl_vfx.io.image import Image, write_image  # noqa: E402

COLUMNS = ("src", "src recon", "dst", "dst recon", "swap", "src mask", "dst mask", "swap mask")


def _tiles(batch: torch.Tensor, to_display: ColorTransform | None) -> np.ndarray:
    """(N, C, H, W) tensor -> (N, H, W, 3) display float array."""
    array = batch.detach().float().clamp(0, 1).cpu().numpy().transpose(0, 2, 3, 1)
    if array.shape[3] == 1:
        return np.repeat(array, 3, axis=3)
    return np.clip(to_display(array), 0, 1) if to_display is not None else array


def preview_grid(columns: dict[str, torch.Tensor], working_space: str, rows: int = 4) -> np.ndarray:
    """Rows of samples, one column per named tensor (faces converted to sRGB for display), uint8 RGB."""
    to_display = ColorTransform(working_space, SRGB_SPACE)
    picked = [_tiles(tensor[:rows], to_display) for tensor in columns.values()]
    n, h, w = picked[0].shape[:3]
    header = 18
    grid = np.zeros((header + n * h, len(picked) * w, 3), np.float32)
    for c, tiles in enumerate(picked):
        for r in range(n):
            grid[header + r * h : header + (r + 1) * h, c * w : (c + 1) * w] = tiles[r]
    grid = (grid * 255 + 0.5).astype(np.uint8)
    for c, name in enumerate(columns):
        cv2.putText(grid, name, (c * w + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return grid


def write_preview(path: str | Path, columns: dict[str, torch.Tensor], working_space: str, iteration: int) -> Path:
    """Write the preview grid PNG atomically."""
    grid = preview_grid(columns, working_space)
    cv2.putText(grid, f"iter {iteration}", (grid.shape[1] - 90, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 220, 0),
                1, cv2.LINE_AA)
    write_image(path, Image.from_array(grid / 255.0, fmt="uint8"))
    return Path(path)


def write_loss_plot(path: str | Path, history: dict[str, list[float]], iteration_offset: int = 0) -> Path:
    """Loss history (src and dst) on a log scale, written atomically as PNG."""
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    for name, values in history.items():
        if values:
            x = np.arange(iteration_offset + 1, iteration_offset + 1 + len(values))
            ax.plot(x, values, label=name, linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
