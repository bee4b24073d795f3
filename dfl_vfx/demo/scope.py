"""A small-face test plate: a 2048x858 scope frame with overscan, two people with faces of 150 and 210 px, grain.

It stands in for the plate of issue 8, where detection on a 640 px copy found only 12 of 20 faces. Built offline
from the public-domain photos the demo shot uses: Eileen Collins (``skimage.data.astronaut``) on the left and a
flipped, warmer-graded Grace Hopper (matplotlib's ``grace_hopper.jpg``) on the right, nearer the camera, each
drifting and rolling a little over the shot on a scene-linear ACEScg set, with film-like grain.
``scope_shot.json`` records where every face is (its dlib box in absolute image pixels), so a run's recall can
be measured with `faces_found`.

Why two sizes: on a 640 px copy a 150 px face is ~44 px, under dlib HOG's ~60 px floor, so it is found only by
the upsampled pass, which the dlib backend runs only when the plain pass found nothing; a 210 px face next to it
(~62 px) is found by the plain pass, and the small one is then never looked for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from dfl_vfx.color.ocio import SRGB_SPACE, ColorTransform
from dfl_vfx.demo.shot import _background, _ease, actor_card, grace_hopper_srgb, write_plate_frame
from dfl_vfx.io.atomic import write_text_atomic
from dfl_vfx.progress import progress_bar

# dlib HOG boxes (left, top, right, bottom) of the faces in the source photos, measured with dlib 20.
COLLINS_FACE = (179.0, 83.0, 266.0, 170.0)  # in the astronaut photo's first CARD_ROWS rows
HOPPER_FACE = (161.0, 137.0, 376.0, 352.0)  # in the 512x600 Grace Hopper photo, before flipping
TRUTH_FILE = "scope_shot.json"


@dataclass(frozen=True)
class ScopeShotConfig:
    """What the small-face plate looks like."""

    frames: int = 10
    first_frame: int = 1001
    width: int = 2048
    height: int = 858
    overscan: int = 64
    face_sizes: tuple[float, ...] = (150.0, 210.0)  # width of each person's face box, in plate pixels
    grain: float = 1.0  # grain strength; 1 is a fast stock pushed a stop
    seed: int = 11
    fps: int = 24


def hopper_card(to_linear: ColorTransform) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Grace Hopper flipped and graded warmer and darker, as linear ACEScg; its matte and flipped face box."""
    photo = grace_hopper_srgb()[:, ::-1].astype(np.float32) / 255.0
    lin = to_linear(np.ascontiguousarray(photo)) * np.array([1.1, 0.95, 0.8], np.float32) * 0.8
    h, w = lin.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    matte = np.clip(np.minimum.reduce([xx, w - 1 - xx, yy, h - 1 - yy]) / 40.0, 0, 1)
    left, top, right, bottom = HOPPER_FACE
    return lin.astype(np.float32), matte.astype(np.float32), (w - 1 - right, top, w - 1 - left, bottom)


def _placement(index: int, person: int, cfg: ScopeShotConfig, face: tuple[float, ...]) -> np.ndarray:
    """2x3 affine from a person's card pixels to data-window array pixels at frame ``index`` (0-based)."""
    t = _ease(index / max(cfg.frames - 1, 1))
    k = cfg.width / 2048  # the framing is designed at 2048 wide and scales with the plate
    if person == 0:
        centre = (0.30 * cfg.width + 40 * t * k, 0.40 * cfg.height + 6 * t * k)
        angle = -3.0 + 5.0 * t
    else:
        centre = (0.71 * cfg.width - 30 * t * k, 0.44 * cfg.height - 4 * t * k)
        angle = 2.0 - 4.0 * t
    scale = cfg.face_sizes[person] / (face[2] - face[0])
    face_centre = ((face[0] + face[2]) / 2, (face[1] + face[3]) / 2)
    mat = cv2.getRotationMatrix2D(face_centre, angle, scale)
    mat[:, 2] += np.array(centre) + cfg.overscan - np.array(face_centre)
    return mat


def _box(mat: np.ndarray, face: tuple[float, ...], overscan: int) -> list[float]:
    """The axis-aligned box, in absolute image pixels, of a card's face box mapped by ``mat``."""
    corners = np.array([[face[0], face[1]], [face[2], face[1]], [face[0], face[3]], [face[2], face[3]]])
    points = corners @ mat[:, :2].T + mat[:, 2] - overscan
    return [round(float(v), 2) for v in (*points.min(axis=0), *points.max(axis=0))]


def render_scope_frame(index: int, cfg: ScopeShotConfig, cards: list[tuple[np.ndarray, np.ndarray, tuple]],
                       background: np.ndarray) -> tuple[np.ndarray, list[list[float]]]:
    """One RGBA float32 frame over the data window, and each person's face box in absolute image pixels."""
    ow, oh = cfg.width + 2 * cfg.overscan, cfg.height + 2 * cfg.overscan
    rgb = background.copy()
    boxes = []
    for person, (card, matte, face) in enumerate(cards):
        mat = _placement(index, person, cfg, face)
        fg = np.clip(cv2.warpAffine(card, mat, (ow, oh), flags=cv2.INTER_CUBIC, borderValue=0), 0, None)
        a = cv2.warpAffine(matte, mat, (ow, oh), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
        rgb = fg * a + rgb * (1 - a)
        boxes.append(_box(mat, face, cfg.overscan))
    rng = np.random.default_rng(cfg.seed * 100003 + index)
    grain = rng.normal(0.0, 1.0, rgb.shape[:2]).astype(np.float32)[..., None]
    rgb = rgb + grain * cfg.grain * (0.006 + 0.035 * np.sqrt(np.clip(rgb, 0, None)))
    alpha = np.ones(rgb.shape[:2] + (1,), np.float32)
    return np.concatenate([rgb, alpha], axis=2).astype(np.float32), boxes


def build_scope_shot(outdir: Path, cfg: ScopeShotConfig | None = None,
                     progress: bool | None = None) -> dict[str, object]:
    """Write ``plate/plate.####.exr`` and ``scope_shot.json`` (the face boxes) under ``outdir``; return the latter."""
    cfg = cfg or ScopeShotConfig()
    outdir = Path(outdir)
    to_linear = ColorTransform(SRGB_SPACE, "ACEScg")
    collins, collins_matte = actor_card(to_linear)
    cards = [(collins, collins_matte, COLLINS_FACE), hopper_card(to_linear)][: len(cfg.face_sizes)]
    rng = np.random.default_rng(cfg.seed)
    background = _background(cfg.height + 2 * cfg.overscan, cfg.width + 2 * cfg.overscan, rng) * 0.8
    frames = list(range(cfg.first_frame, cfg.first_frame + cfg.frames))
    faces: dict[str, list[list[float]]] = {}
    for i, frame in enumerate(progress_bar(frames, desc="scope plate", unit="frame", enabled=progress)):
        pixels, boxes = render_scope_frame(i, cfg, cards, background)
        write_plate_frame(outdir / "plate" / f"plate.{frame:04d}.exr", pixels, frame, cfg.width, cfg.height,
                          cfg.overscan, cfg.fps)
        faces[str(frame)] = boxes
    summary = {
        "plate": str(outdir / "plate" / "plate.####.exr"),
        "plate_frames": f"{frames[0]}-{frames[-1]}",
        "plate_colorspace": "ACEScg",
        "faces": faces,
        "config": asdict(cfg),
    }
    write_text_atomic(outdir / TRUTH_FILE, json.dumps(summary, indent=2))
    return summary


def faces_found(placed: list[list[float]], found: list[list[float]]) -> int:
    """How many placed face boxes a found box answers: its centre inside the placed box, each used once."""
    used: set[int] = set()
    count = 0
    for left, top, right, bottom in placed:
        for k, box in enumerate(found):
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            if k not in used and left <= cx <= right and top <= cy <= bottom:
                used.add(k)
                count += 1
                break
    return count
