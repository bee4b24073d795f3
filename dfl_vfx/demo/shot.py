"""The embedded demo shot, built offline from public-domain face photos shipped inside installed packages.

Destination plate: Eileen Collins (``skimage.data.astronaut``, NASA, public domain) on a scene-linear ACEScg set,
1920x1080 with overscan, half EXR, a smooth camera push-in with pan and roll, a key light that dims and cools over
the shot, practical lights far above 1.0, and per-frame grain. Source photos: Grace Hopper (matplotlib's
``grace_hopper.jpg``, US Navy, public domain) with varied pose, framing and grade, as 8-bit sRGB PNGs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import matplotlib.cbook
import matplotlib.image
import numpy as np
import skimage.data

from dfl_vfx.color.ocio import SRGB_SPACE, ColorTransform
from dfl_vfx.io.atomic import write_text_atomic
from dfl_vfx.io.image import Image, Window, write_image
from dfl_vfx.progress import progress_bar

CARD_ROWS = 330  # rows of the astronaut photo used as the actor card
# the occluder test's face region on the actor card: an ellipse around the astronaut's face (centre, semi-axes)
FACE_ELLIPSE = ((225.0, 118.0), (50.0, 62.0))
HAND_SRGB = (0.86, 0.63, 0.52)
OCCLUDER_SUPERSAMPLE = 4


@dataclass(frozen=True)
class DemoShotConfig:
    """What the demo shot looks like; every field has a sensible default."""

    frames: int = 48
    first_frame: int = 1001
    width: int = 1920
    height: int = 1080
    overscan: int = 64  # pixels of data window beyond each side of the display window
    source_photos: int = 24
    seed: int = 7
    fps: int = 24
    occluder: bool = False  # a hand over the mouth, with the true face matte written to matte/


def astronaut_srgb() -> np.ndarray:
    """Eileen Collins, 512x512 RGB uint8 (NASA, public domain), shipped with scikit-image."""
    return skimage.data.astronaut()


def grace_hopper_srgb() -> np.ndarray:
    """Grace Hopper, 600x512 RGB uint8 (US Navy, public domain), shipped with matplotlib."""
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(matplotlib.image.imread(f, format="jpg"), dtype=np.uint8)


def _ease(t: float) -> float:
    return 0.5 - 0.5 * np.cos(np.pi * t)


def _timecode(frame: int, fps: int) -> tuple[int, int]:
    """SMPTE timecode packed as OpenEXR stores it (BCD hh:mm:ss:ff in the first word)."""
    ff, s = frame % fps, frame // fps
    digits = [s // 3600, (s // 60) % 60, s % 60, ff]
    bcd = 0
    for value in digits:
        bcd = (bcd << 8) | ((value // 10) << 4) | (value % 10)
    return bcd, 0


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A linear ACEScg set: a cool-to-warm gradient wall plus soft practical lights (values 3 to 40)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (x / w)[..., None]
    wall = (1 - t) * np.array([0.03, 0.05, 0.09], np.float32) + t * np.array([0.10, 0.06, 0.035], np.float32)
    wall = wall * (0.6 + 0.4 * (1 - y / h))[..., None]
    for _ in range(6):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h * 0.45)
        radius = rng.uniform(10, 28) * w / 1920
        power = rng.uniform(3, 40)
        glow = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
        wall = wall + glow[..., None] * power * np.array([1.0, 0.85, 0.6], np.float32)
    return wall.astype(np.float32)


def actor_card(to_linear: ColorTransform) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut photo as linear ACEScg with restored highlights, and a soft matte around it."""
    photo = astronaut_srgb()[:CARD_ROWS].astype(np.float32) / 255.0  # head and shoulders only
    lin = to_linear(photo)
    luma = lin @ np.array([0.27, 0.67, 0.06], np.float32)
    boost = 1.0 + 5.0 * np.clip((luma - 0.55) / 0.45, 0, 1) ** 2  # white suit and flag go above 1.0
    lin = lin * boost[..., None]
    h, w = lin.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    edge = np.minimum.reduce([xx, w - 1 - xx, yy, np.full_like(yy, 1e6)])  # bottom edge runs out of frame
    matte = np.clip(edge / 40.0, 0, 1)
    return lin.astype(np.float32), matte.astype(np.float32)


def card_to_plate_matrix(index: int, cfg: DemoShotConfig, card_shape: tuple[int, ...]) -> np.ndarray:
    """2x3 affine from actor-card pixels to data-window array pixels for frame ``index`` (0-based).

    Subtract ``cfg.overscan`` from the result's translation for absolute image coordinates. Tests use it as
    ground truth: landmarks found on the card, mapped through it, are where the face is in the plate.
    """
    t = _ease(index / max(cfg.frames - 1, 1))
    ow, oh = cfg.width + 2 * cfg.overscan, cfg.height + 2 * cfg.overscan
    k = cfg.height / 1080  # the framing is designed at 1080 lines and scales with the plate
    scale = (3.15 + 0.35 * t) * k
    angle = -2.0 + 4.0 * t
    centre_card = (card_shape[1] / 2, card_shape[0] * 0.42)
    centre_frame = (ow / 2 + (120 - 240 * t) * k, oh / 2 + (30 - 40 * t) * k)
    mat = cv2.getRotationMatrix2D(centre_card, angle, scale)
    mat[:, 2] += np.array(centre_frame) - np.array(centre_card)
    return mat


def _supersampled(shape: tuple[int, int], draw) -> np.ndarray:  # noqa: ANN001 - a drawing callback
    """An anti-aliased float32 mask: ``draw(canvas, scale)`` paints 1s on a canvas OCCLUDER_SUPERSAMPLE x larger."""
    k = OCCLUDER_SUPERSAMPLE
    canvas = np.zeros((shape[0] * k, shape[1] * k), np.float32)
    draw(canvas, k)
    return cv2.resize(canvas, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def face_region_card(card_shape: tuple[int, ...]) -> np.ndarray:
    """The face ellipse on the actor card, float32 (H, W) in [0, 1] with anti-aliased edges."""
    (cx, cy), (ax, ay) = FACE_ELLIPSE

    def draw(canvas: np.ndarray, k: int) -> None:
        cv2.ellipse(canvas, (round(cx * k), round(cy * k)), (round(ax * k), round(ay * k)), 0, 0, 360, 1.0, -1)

    return _supersampled(card_shape[:2], draw)


def hand_matte_card(index: int, cfg: DemoShotConfig, card_shape: tuple[int, ...]) -> np.ndarray:
    """The hand on the actor card for frame ``index``, float32 (H, W) in [0, 1].

    Four fingers point left across the mouth from a palm at the face's right; over the shot the hand rises from
    below the chin over the mouth, slides from right to left and turns by a few degrees.
    """
    t = index / max(cfg.frames - 1, 1)
    rise = min(1.0, t / 0.35)
    origin = np.array([262.0 - 38.0 * t, 205.0 - 62.0 * rise])  # the knuckles' centre
    angle = np.deg2rad(-8.0 + 16.0 * t)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])

    def place(points: np.ndarray) -> np.ndarray:
        return points @ rot.T + origin

    def draw(canvas: np.ndarray, k: int) -> None:
        palm = place(np.array([[0.0, 0.0]]))[0]
        cv2.ellipse(canvas, (round(palm[0] * k + 24 * k), round(palm[1] * k)), (round(30 * k), round(24 * k)),
                    float(np.rad2deg(angle)), 0, 360, 1.0, -1)
        for length, y in ((40.0, -15.0), (48.0, -5.0), (46.0, 5.0), (38.0, 15.0)):  # closed fingers, no gaps
            base, tip = place(np.array([[4.0, y], [-length, y]]))
            cv2.line(canvas, (round(base[0] * k), round(base[1] * k)), (round(tip[0] * k), round(tip[1] * k)), 1.0,
                     round(11 * k), cv2.LINE_8)
            cv2.circle(canvas, (round(tip[0] * k), round(tip[1] * k)), round(5.5 * k), 1.0, -1)

    return _supersampled(card_shape[:2], draw)


def occluded_card(index: int, cfg: DemoShotConfig, card: np.ndarray, to_linear: ColorTransform
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(actor card with the hand drawn over it, true face matte on the card) for frame ``index``."""
    hand = hand_matte_card(index, cfg, card.shape)
    h, w = card.shape[:2]
    shade = 0.75 + 0.35 * np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]  # lit from below-ish
    skin = to_linear(np.array([[HAND_SRGB]], np.float32))[0, 0] * shade
    skin = np.broadcast_to(skin, (h, w, 3))
    painted = card * (1.0 - hand[..., None]) + skin * hand[..., None]
    return painted.astype(np.float32), (face_region_card(card.shape) * (1.0 - hand)).astype(np.float32)


def write_matte_frame(path: Path, matte: np.ndarray, width: int, height: int, overscan: int) -> None:
    """One single-channel (``A``) half EXR over the plate's data and display windows."""
    image = Image(
        pixels=matte[..., None].astype(np.float32),
        channels=["A"],
        data_window=Window(-overscan, -overscan, width + 2 * overscan, height + 2 * overscan),
        display_window=Window(0, 0, width, height),
        channel_formats=["half"],
        metadata={"compression": "zip", "Software": "dfl_vfx demo-shot"},
    )
    write_image(path, image)


def render_plate_frame(index: int, cfg: DemoShotConfig, card: np.ndarray, matte: np.ndarray,
                       background: np.ndarray) -> np.ndarray:
    """One RGBA frame over the data window (display plus overscan) as float32."""
    t = _ease(index / max(cfg.frames - 1, 1))
    k = cfg.height / 1080
    ow, oh = cfg.width + 2 * cfg.overscan, cfg.height + 2 * cfg.overscan
    mat = card_to_plate_matrix(index, cfg, card.shape)
    fg = cv2.warpAffine(card, mat, (ow, oh), flags=cv2.INTER_CUBIC, borderValue=0)
    a = cv2.warpAffine(matte, mat, (ow, oh), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    key = (1.0 - 0.45 * t) * np.array([1.0 + 0.08 * (1 - t), 1.0, 1.0 + 0.15 * t], np.float32)
    bg_mat = np.array([[1.0, 0, -40 * t * k], [0, 1.0, 0]], np.float32)
    bg = cv2.warpAffine(background, bg_mat, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    rgb = np.clip(fg * key, 0, None) * a + bg * (1 - a)
    rng = np.random.default_rng(cfg.seed * 100003 + index)
    grain = rng.normal(0.0, 1.0, rgb.shape[:2]).astype(np.float32)[..., None]
    rgb = rgb + grain * (0.004 + 0.02 * np.sqrt(np.clip(rgb, 0, None)))
    alpha = np.ones(rgb.shape[:2] + (1,), np.float32)
    return np.concatenate([rgb, alpha], axis=2).astype(np.float32)


def source_photo(index: int, cfg: DemoShotConfig, base: np.ndarray) -> np.ndarray:
    """One 640x640 sRGB uint8 photo of the source identity with varied pose, framing and grade."""
    rng = np.random.default_rng(cfg.seed * 7919 + index)
    img = base.astype(np.float32) / 255.0
    if rng.random() < 0.5:
        img = img[:, ::-1]
    h, w = img.shape[:2]
    size = 640
    mat = cv2.getRotationMatrix2D((w / 2, h * 0.42), rng.uniform(-14, 14), rng.uniform(0.9, 1.25))
    mat[:, 2] += np.array([size / 2, size * 0.45]) - np.array([w / 2, h * 0.42]) + rng.uniform(-40, 40, 2)
    out = cv2.warpAffine(img, mat, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    gain = rng.uniform(0.75, 1.2) * np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.9, 1.1)])
    out = np.clip(out * gain, 0, 1) ** rng.uniform(0.85, 1.2)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.6, 1.4))
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_plate_frame(path: Path, pixels: np.ndarray, frame: int, width: int, height: int, overscan: int,
                      fps: int) -> None:
    """One RGBA half-EXR plate frame in ACEScg whose data window reaches ``overscan`` pixels past the display."""
    image = Image(
        pixels=pixels,
        channels=["R", "G", "B", "A"],
        data_window=Window(-overscan, -overscan, width + 2 * overscan, height + 2 * overscan),
        display_window=Window(0, 0, width, height),
        channel_formats=["half"] * 4,
        metadata={
            "oiio:ColorSpace": "ACEScg",
            "compression": "zip",
            "smpte:TimeCode": _timecode(frame, fps),
            "FramesPerSecond": (fps, 1),
            "cameraFocalLength": 50.0,
            "Software": "dfl_vfx demo-shot",
        },
        metadata_types={"smpte:TimeCode": "timecode", "FramesPerSecond": "rational2i"},
    )
    write_image(path, image)


def build_demo_shot(outdir: Path, cfg: DemoShotConfig | None = None,
                    progress: bool | None = None) -> dict[str, object]:
    """Write ``plate/plate.####.exr`` and ``src/src.####.png`` under ``outdir``; returns a summary dict.

    ``progress``: None or True report progress (a bar on a terminal, log lines otherwise), False nothing.
    """
    cfg = cfg or DemoShotConfig()
    outdir = Path(outdir)
    to_linear = ColorTransform(SRGB_SPACE, "ACEScg")
    card, matte = actor_card(to_linear)
    rng = np.random.default_rng(cfg.seed)
    ow, oh = cfg.width + 2 * cfg.overscan, cfg.height + 2 * cfg.overscan
    background = _background(oh, ow, rng)
    plate_dir, src_dir, matte_dir = outdir / "plate", outdir / "src", outdir / "matte"
    frames = list(range(cfg.first_frame, cfg.first_frame + cfg.frames))
    for i, frame in enumerate(progress_bar(frames, desc="demo plate", unit="frame", enabled=progress)):
        frame_card = card
        if cfg.occluder:
            frame_card, face_matte = occluded_card(i, cfg, card, to_linear)
            ow, oh = cfg.width + 2 * cfg.overscan, cfg.height + 2 * cfg.overscan
            plate_matte = cv2.warpAffine(face_matte, card_to_plate_matrix(i, cfg, card.shape), (ow, oh),
                                         flags=cv2.INTER_LINEAR, borderValue=0)
            write_matte_frame(matte_dir / f"matte.{frame:04d}.exr", plate_matte, cfg.width, cfg.height, cfg.overscan)
        pixels = render_plate_frame(i, cfg, frame_card, matte, background)
        write_plate_frame(plate_dir / f"plate.{frame:04d}.exr", pixels, frame, cfg.width, cfg.height, cfg.overscan,
                          cfg.fps)
    base = grace_hopper_srgb()
    photos = range(cfg.source_photos)
    for i in progress_bar(photos, desc="demo source photos", unit="photo", enabled=progress):
        photo = source_photo(i, cfg, base)
        write_image(src_dir / f"src.{i + 1:04d}.png", Image.from_array(photo / 255.0, fmt="uint8"))
    summary = {
        "plate": str(plate_dir / "plate.####.exr"),
        "plate_frames": f"{frames[0]}-{frames[-1]}",
        "plate_colorspace": "ACEScg",
        "source_photos": str(src_dir / "src.####.png"),
        "source_colorspace": SRGB_SPACE,
        "config": asdict(cfg),
    }
    if cfg.occluder:
        summary["face_matte"] = str(matte_dir / "matte.####.exr")
    write_text_atomic(outdir / "demo_shot.json", json.dumps(summary, indent=2))
    return summary
