"""Shot files against the session's small demo shot (12 frames, 1001-1012)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

TINY_TRAINING = """
[model.options]
archi = "df-ud"
resolution = 64
ae_dims = 32
e_dims = 16
d_dims = 16
d_mask_dims = 16
"""


def shot_text(small_shot: Path, tmp: Path, frames: str = "1001-1004", extra: str = "") -> str:
    return f"""
[shot]
name = "demo"
plate = "{small_shot}/plate/plate.####.exr"
frames = "{frames}"
output = "{tmp}/swap"
work_dir = "{tmp}/work"

[source]
footage = "{small_shot}/src/src.####.png"

[extract]
face_type = "f"
size = 64
select = "largest"
jobs = 1
source_colorspace = "sRGB Encoded Rec.709 (sRGB)"
{TINY_TRAINING}
[merge]
erode = 5
blur = 10

[farm]
chunk_size = 2
gpus = 0
train_tasks = 2
train_task_time = "10m"
iterations = 3
{extra}"""


@pytest.fixture()
def write_shot(small_shot: Path, tmp_path: Path) -> Callable[..., Path]:
    """``write_shot(frames=..., extra=..., text=...)`` -> the path of a shot file in tmp_path."""

    def write(frames: str = "1001-1004", extra: str = "", text: str | None = None) -> Path:
        path = tmp_path / "shot.toml"
        path.write_text(text if text is not None else shot_text(small_shot, tmp_path, frames, extra))
        return path

    return write
