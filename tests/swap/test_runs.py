"""A swap run on a farm: its summary as it goes and per chunk, frames it cannot use, leftovers of killed runs,
output formats, and progress in logs."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.cli.main import main
from dfl_vfx.color.ocio import WorkingSpace, plate_colorspace
from dfl_vfx.errors import DflError
from dfl_vfx.io.atomic import temp_name
from dfl_vfx.io.image import Image, read_header, read_image, write_image
from dfl_vfx.merge.merger import MergeSettings
from dfl_vfx.swap.engine import SWAP_ATTRIBUTE, SwapSettings
from dfl_vfx.swap.layout import read_layers
from dfl_vfx.swap.pipeline import SUMMARY_FILE, swap_shot

# Runs the CLI with a frame that crashes the interpreter in native code (SIGSEGV) once frame 1003 is in the summary.
CRASHING_SWAP = """
import faulthandler, json, sys, time
from pathlib import Path
from dfl_vfx.swap import pipeline

run_job = pipeline.ShotSwapper.run_job
summary = Path(sys.argv[1])

def crash_on_1004(self, job):
    if job.frame == 1004:
        while 1003 not in (json.loads(summary.read_text())["frames"]["done"] if summary.exists() else []):
            time.sleep(0.01)
        faulthandler._sigsegv()
    return run_job(self, job)

pipeline.ShotSwapper.run_job = crash_on_1004
from dfl_vfx.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def _settings(model: Path, layers: tuple[str, ...] = ("rgba", "mask")) -> SwapSettings:
    return SwapSettings(model=str(model), merge=MergeSettings(mask_mode="hull", color_transfer="none"), layers=layers)


def test_a_native_crash_leaves_the_summary_of_the_frames_done(small_shot, facesets, swap_model,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "swap"
    summary_path = out / "swap_summary.1001-1005.json"
    swap = ["swap", str(small_shot / "plate" / "plate.####.exr"), "--model", str(swap_model[1]),
            "--faceset", str(facesets[1]), "--out", str(out), "--frames", "1001-1005", "--jobs", "1",
            "--no-progress"]
    crashed = subprocess.Popen([sys.executable, "-c", CRASHING_SWAP, str(summary_path), *swap],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = crashed.communicate(timeout=300)
    assert crashed.returncode == -signal.SIGSEGV
    assert "Segmentation fault" in err  # faulthandler's report
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "running" and summary["pid"] == crashed.pid  # a dead pid: the run crashed
    assert summary["frames"]["done"] == [1001, 1002, 1003] and summary["frames"]["total"] == 5
    assert sorted(p.name for p in out.glob("plate.*.exr")) == [f"plate.{f}.exr" for f in (1001, 1002, 1003)]

    assert main(swap) == 0  # the rerun, in this process
    resumed = json.loads(summary_path.read_text())
    assert resumed["status"] == "complete"
    assert resumed["frames"]["skipped"] == [1001, 1002, 1003] and resumed["frames"]["done"] == [1004, 1005]


def test_farm_chunks_in_one_folder_keep_their_own_summaries(small_shot, facesets, swap_model,
                                                            tmp_path: Path) -> None:
    plate = str(small_shot / "plate" / "plate.####.exr")
    out = tmp_path / "swap"
    for chunk in ("1001-1002", "1003-1004", "1005,1007"):
        swap_shot(plate, str(out), _settings(swap_model[1]), frames=chunk, faceset=str(facesets[1]), progress=False)
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == ["swap_summary.1001-1002.json", "swap_summary.1003-1004.json", "swap_summary.1005,1007.json"]
    first = json.loads((out / "swap_summary.1001-1002.json").read_text())
    second = json.loads((out / "swap_summary.1003-1004.json").read_text())
    assert first["frames"]["done"] == [1001, 1002] and first["chunk"] == "1001-1002"
    assert second["frames"]["done"] == [1003, 1004] and second["status"] == "complete"
    assert json.loads((out / "swap_summary.1005,1007.json").read_text())["frames"]["done"] == [1005, 1007]

    whole = swap_shot(plate, str(out), _settings(swap_model[1]), faceset=str(facesets[1]), progress=False)
    assert whole.skipped == [1001, 1002, 1003, 1004, 1005, 1007] and len(whole.done) == 6
    saved = json.loads((out / SUMMARY_FILE).read_text())  # the whole sequence: the plain name
    assert saved["chunk"] is None and saved["status"] == "complete" and saved["frames"]["total"] == 12
    assert json.loads((out / "swap_summary.1001-1002.json").read_text()) == first  # the chunks' stay


def test_a_plate_frame_without_colour_fails_alone(small_shot, swap_model, tmp_path: Path) -> None:
    """Detecting on the fly used to index 'R' and abort the whole run; now that frame fails in one line."""
    plate_dir = tmp_path / "plate"
    plate_dir.mkdir()
    for frame in (1001, 1002):
        shutil.copy(small_shot / "plate" / f"plate.{frame}.exr", plate_dir)
    depth = np.full((64, 96, 1), 3.5, np.float32)
    write_image(plate_dir / "plate.1003.exr", Image.from_array(depth, channels=["depth.Z"], fmt="float"))
    summary = swap_shot(str(plate_dir / "plate.####.exr"), str(tmp_path / "out"), _settings(swap_model[1]),
                        jobs=2, progress=False)
    assert summary.done == [1001, 1002] and summary.faces == 2 and summary.status == "complete"
    reason = summary.failed[1003]
    assert "plate.1003.exr" in reason and "no R, G, B channels (has depth.Z)" in reason and "\n" not in reason
    assert not (tmp_path / "out" / "plate.1003.exr").exists()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_rerun_removes_the_temps_of_a_killed_run_only(small_shot, facesets, swap_model, tmp_path: Path) -> None:
    out = tmp_path / "swap"
    out.mkdir()
    target = out / "plate.1001.exr"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        own = temp_name(target).name
        stale = out / own.replace(f"~{os.getpid()}~", f"~{_dead_pid()}~")  # as `kill -9` mid-write leaves it
        writing = out / own.replace(f"~{os.getpid()}~", f"~{live.pid}~")  # another chunk, still at work
        stale.write_bytes(b"half a frame")
        writing.write_bytes(b"a frame being written")
        swap_shot(str(small_shot / "plate" / "plate.####.exr"), str(out), _settings(swap_model[1]), frames="1001",
                  faceset=str(facesets[1]), progress=False)
        assert not stale.exists()
        assert writing.read_bytes() == b"a frame being written"
    finally:
        live.kill()
        live.wait()


def _png_plate(small_shot: Path, folder: Path, frames: tuple[int, ...]) -> None:
    """The demo plate as 8-bit sRGB PNG frames (their data window starts at 0, so faces are found again)."""
    folder.mkdir()
    for frame in frames:
        image = read_image(small_shot / "plate" / f"plate.{frame}.exr")
        srgb = WorkingSpace(plate_colorspace(None, image.metadata)).display_uint8(image.rgb())
        write_image(folder / f"plate.{frame}.png", Image.from_array(srgb / 255.0, fmt="uint8",
                                                                     metadata={"oiio:ColorSpace": "sRGB"}))


def test_a_png_plate_swaps_to_png_with_rgba_only(small_shot, swap_model, tmp_path: Path) -> None:
    _png_plate(small_shot, tmp_path / "plate", (1001, 1002))
    plate = str(tmp_path / "plate" / "plate.####.png")
    out = tmp_path / "swap"
    with pytest.raises(DflError, match=r"PNG, which cannot hold the mask layer.*--layers rgba"):
        swap_shot(plate, str(out), _settings(swap_model[1]), progress=False)
    assert not out.exists()  # refused before any work

    summary = swap_shot(plate, str(out), _settings(swap_model[1], ("rgba",)), progress=False)
    assert summary.done == [1001, 1002] and summary.faces == 2 and not summary.failed
    swapped = read_image(out / "plate.1001.png", pixel_type="native")
    assert swapped.channels == ["R", "G", "B", "A"] and swapped.channel_formats == ["uint8"] * 4
    before = read_image(tmp_path / "plate" / "plate.1001.png")
    changed = np.abs(swapped.pixels[..., :3].astype(np.float32) - before.pixels).max(axis=2) > 2 / 255
    assert 500 < changed.sum() < 0.2 * changed.size  # the face changed, not the frame
    assert SWAP_ATTRIBUTE in read_header(out / "plate.1001.png").metadata  # so a rerun can skip it
    again = swap_shot(plate, str(out), _settings(swap_model[1], ("rgba",)), progress=False)
    assert again.skipped == [1001, 1002] and not again.done


def test_progress_in_a_log_is_lines_not_bars(small_shot, facesets, swap_model, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="dfl_vfx.progress")
    swap_shot(str(small_shot / "plate" / "plate.####.exr"), str(tmp_path / "out"), _settings(swap_model[1]),
              frames="1001-1002", faceset=str(facesets[1]))
    lines = [record.getMessage() for record in caplog.records if record.name == "dfl_vfx.progress"]
    assert lines and lines[-1].startswith("swap: 2/2 frames (100%)"), lines


def _lossy_plate(small_shot: Path, folder: Path, compression: str, frames: tuple[int, ...] = (1001, 1002)) -> str:
    folder.mkdir()
    for frame in frames:
        image = read_image(small_shot / "plate" / f"plate.{frame}.exr", pixel_type="native")
        write_image(folder / f"plate.{frame}.exr", image, compression)
    return str(folder / "plate.####.exr")


def test_a_lossy_plate_is_delivered_lossless_and_bit_identical_outside_the_matte(small_shot, facesets, swap_model,
                                                                                  tmp_path: Path) -> None:
    """A dwaa:45 plate used to be re-encoded with dwaa: ~99% of the pixels outside the matte changed on disk."""
    plate = _lossy_plate(small_shot, tmp_path / "plate", "dwaa:45")
    out = tmp_path / "swap"
    summary = swap_shot(plate, str(out), _settings(swap_model[1]), faceset=str(facesets[1]), progress=False)
    assert summary.done == [1001, 1002] and summary.faces == 2
    for frame in (1001, 1002):
        source = read_image(tmp_path / "plate" / f"plate.{frame}.exr", pixel_type="native")
        delivered = read_image(out / f"plate.{frame}.exr", pixel_type="native")
        assert delivered.metadata["compression"] == "zip"
        outside = read_layers(out / f"plate.{frame}.exr", ["mask"])["mask"] == 0
        assert outside.sum() > 0.9 * outside.size  # most of the frame is outside the face
        assert np.array_equal(delivered.pixels[outside].view(np.uint16), source.pixels[outside].view(np.uint16))
    note = "the plate's dwaa:45 compression is lossy: frames delivered with zip"
    assert any(line.strip().startswith(note) for line in summary.lines())
    saved = json.loads((out / SUMMARY_FILE).read_text())
    assert saved["compression"] == {"plate": "dwaa:45", "delivered": "zip"}


def test_asking_for_the_plates_dwa_codec_keeps_its_level_and_lossless_plates_keep_theirs(
        small_shot, facesets, swap_model, tmp_path: Path) -> None:
    plate = _lossy_plate(small_shot, tmp_path / "dwa", "dwaa:200", (1001,))
    summary = swap_shot(plate, str(tmp_path / "kept"), _settings(swap_model[1], ("rgba",)), compression="dwaa",
                        faceset=str(facesets[1]), progress=False)
    header = read_header(tmp_path / "kept" / "plate.1001.exr").metadata
    assert (header["compression"], header["openexr:dwaCompressionLevel"]) == ("dwaa", 200.0)
    assert summary.compression == "dwaa:200" and summary.compression_note == ""
    plate = _lossy_plate(small_shot, tmp_path / "piz", "piz", (1001,))
    summary = swap_shot(plate, str(tmp_path / "piz_out"), _settings(swap_model[1], ("rgba",)),
                        faceset=str(facesets[1]), progress=False)
    assert read_header(tmp_path / "piz_out" / "plate.1001.exr").metadata["compression"] == "piz"
    assert summary.compression == "piz" and summary.compression_note == ""


def test_rgba_after_a_run_with_layers_removes_the_emptied_layers_folder(small_shot, facesets, swap_model,
                                                                        tmp_path: Path) -> None:
    """The old layers files went but an empty OUT/layers/ stayed behind."""
    plate, out = str(small_shot / "plate" / "plate.####.exr"), tmp_path / "swap"
    swap_shot(plate, str(out), _settings(swap_model[1]), frames="1001-1002", faceset=str(facesets[1]), progress=False)
    assert sorted(p.name for p in (out / "layers").iterdir()) == ["plate.1001.exr", "plate.1002.exr"]
    swap_shot(plate, str(out), _settings(swap_model[1], ("rgba",)), frames="1001", faceset=str(facesets[1]),
              progress=False)
    assert sorted(p.name for p in (out / "layers").iterdir()) == ["plate.1002.exr"]  # still holds 1002's
    swap_shot(plate, str(out), _settings(swap_model[1], ("rgba",)), frames="1001-1002", faceset=str(facesets[1]),
              progress=False)
    assert not (out / "layers").exists()
    assert sorted(p.name for p in out.glob("plate.*.exr")) == ["plate.1001.exr", "plate.1002.exr"]
