"""The demo shot: format, overscan, colour, motion, lighting change, highlights, grain, determinism."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from dfl_vfx.demo.shot import DemoShotConfig, build_demo_shot, render_plate_frame
from dfl_vfx.io.image import Window, read_image
from dfl_vfx.io.sequence import open_sequence


def test_plate_sequence_format(small_shot: Path) -> None:
    seq = open_sequence(str(small_shot / "plate" / "plate.####.exr"))
    assert seq.frames == list(range(1001, 1013)) and not seq.missing()
    first = read_image(seq.path(1001))
    assert first.channels == ["R", "G", "B", "A"]
    assert first.channel_formats == ["half"] * 4
    assert first.display_window == Window(0, 0, 640, 360)
    assert first.data_window == Window(-24, -24, 688, 408)  # overscan on every side
    assert first.metadata["compression"] == "zip"
    assert first.metadata_types["smpte:TimeCode"] == "timecode"
    assert first.rgb().max() > 3.0  # practical lights far above 1.0
    assert (first.rgb() < 0).any()  # grain reaches below zero in the darks, as real plates do


def test_camera_moves(small_shot: Path) -> None:
    a = read_image(small_shot / "plate" / "plate.1001.exr").rgb()
    b = read_image(small_shot / "plate" / "plate.1012.exr").rgb()
    assert np.abs(a - b).mean() > 0.02


def test_key_light_dims_and_cools_over_the_shot() -> None:
    cfg = DemoShotConfig(frames=10, width=320, height=180, overscan=8, seed=5)
    card = np.ones((100, 80, 3), np.float32)  # a white card shows the key light itself
    matte = np.ones((100, 80), np.float32)
    bg = np.zeros((196, 336, 3), np.float32)
    first = render_plate_frame(0, cfg, card, matte, bg)[98, 168, :3]
    last = render_plate_frame(9, cfg, card, matte, bg)[98, 168, :3]
    assert first.mean() > 1.5 * last.mean()
    assert last[2] / last[0] > first[2] / first[0] + 0.1  # bluer at the end


def test_deterministic_with_seed() -> None:
    cfg = DemoShotConfig(frames=2, width=320, height=180, overscan=8, seed=5)
    card = np.full((40, 30, 3), 0.5, np.float32)
    matte = np.ones((40, 30), np.float32)
    bg = np.zeros((196, 336, 3), np.float32)
    one = render_plate_frame(1, cfg, card, matte, bg)
    two = render_plate_frame(1, cfg, card, matte, bg)
    other = render_plate_frame(1, DemoShotConfig(frames=2, width=320, height=180, overscan=8, seed=6), card, matte, bg)
    np.testing.assert_array_equal(one, two)
    assert np.abs(one - other).max() > 0  # another seed, other grain


def test_source_photos_vary(small_shot: Path) -> None:
    photos = [read_image(p).rgb() for p in sorted((small_shot / "src").glob("src.*.png"))]
    assert len(photos) == 4 and photos[0].shape == (640, 640, 3)
    diffs = [np.abs(photos[0] - p).mean() for p in photos[1:]]
    assert min(diffs) > 0.02


def test_build_writes_a_summary(tmp_path: Path) -> None:
    summary = build_demo_shot(tmp_path, DemoShotConfig(frames=1, width=160, height=90, overscan=4, source_photos=1),
                              progress=False)
    assert summary["plate_frames"] == "1001-1001"
    assert (tmp_path / "demo_shot.json").is_file()


def test_demo_shot_progress_in_a_log_is_lines_not_bars(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "dfl-vfx"
    result = subprocess.run([str(exe), "demo-shot", str(tmp_path), "--frames", "2", "--source-photos", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr  # stderr is a pipe here, as in `make demo > log 2>&1`
    lines = result.stderr.splitlines()
    assert any(line.startswith("demo plate: 2/2 frames (100%)") for line in lines), result.stderr
    assert any(line.startswith("demo source photos: 1/1 photo (100%)") for line in lines), result.stderr


def test_demo_shot_into_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    target = tmp_path / "shot"
    target.write_text("a file")
    exe = Path(sys.executable).parent / "dfl-vfx"
    result = subprocess.run([str(exe), "demo-shot", str(target)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"dfl-vfx demo-shot: error: OUTDIR {target} is a file, not a folder; give a folder path (or move the file away)"
    ]
