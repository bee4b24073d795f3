"""Frames in flight share no native object unsafely: detection on the fly gives the same faces on every run."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dfl_vfx.color.ocio import WorkingSpace, plate_colorspace
from dfl_vfx.io.image import read_header, read_image
from dfl_vfx.merge.merger import MergeSettings
from dfl_vfx.swap.engine import FACES_ATTRIBUTE, SwapSettings
from dfl_vfx.swap.faces import FaceFinder
from dfl_vfx.swap.pipeline import swap_shot

FRAMES = range(1001, 1007)


def _faces_and_pixels(out: Path) -> dict[int, tuple[str, bytes]]:
    """Per frame: the header's faces (landmarks, matrices) and the composited pixels."""
    found = {}
    for frame in FRAMES:
        path = out / f"plate.{frame}.exr"
        found[frame] = (read_header(path).metadata[FACES_ATTRIBUTE], read_image(path).pixels.tobytes())
    return found


def test_threaded_detection_on_the_fly_is_repeatable(small_shot, swap_model, tmp_path: Path) -> None:
    """Two frames in flight detecting at once used to share one dlib detector: some runs moved landmarks."""
    plate = str(small_shot / "plate" / "plate.####.exr")
    settings = SwapSettings(model=str(swap_model[1]), merge=MergeSettings(mask_mode="hull", color_transfer="none"),
                            layers=("rgba",), threads=1)
    frames = f"{FRAMES[0]}-{FRAMES[-1]}"
    reference = swap_shot(plate, str(tmp_path / "serial"), settings, frames=frames, jobs=1, progress=False)
    assert reference.done == list(FRAMES) and reference.faces == len(FRAMES)
    expected = _faces_and_pixels(tmp_path / "serial")
    for run in range(4):
        out = tmp_path / f"threaded{run}"
        summary = swap_shot(plate, str(out), settings, frames=frames, jobs=4, progress=False)
        assert summary.done == list(FRAMES) and not summary.failed
        got = _faces_and_pixels(out)
        differing = [frame for frame in FRAMES if got[frame] != expected[frame]]
        assert not differing, f"run {run}: frames {differing} differ from the one-thread run"


def test_one_finder_called_from_threads_finds_what_one_thread_finds(small_shot) -> None:
    images = [read_image(small_shot / "plate" / f"plate.{frame}.exr") for frame in FRAMES]
    space = WorkingSpace(plate_colorspace(None, images[0].metadata))
    finder = FaceFinder()

    def landmarks(i: int) -> list[np.ndarray]:
        return [plan.landmarks for plan in finder.plans(images[i % len(images)].rgb(), (0, 0), space.display_uint8)]

    expected = [landmarks(i) for i in range(len(images))]
    assert all(len(faces) == 1 for faces in expected)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(landmarks, range(8 * len(images))))
    wrong = [i for i, faces in enumerate(results)
             if len(faces) != 1 or not np.array_equal(faces[0], expected[i % len(images)][0])]
    assert not wrong, f"{len(wrong)} of {len(results)} threaded detections differ"
