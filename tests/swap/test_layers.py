"""The live layers: a host redoes erode, blur, opacity and the face grade from matte.A, raw and the header alone.

The host here is NumPy and OpenCV written the way a compositing package does it (disc erode, Gaussian blur, min,
multiply, over), following docs/dev/swap-output.md, never the engine's own functions. Its composite from one render's
layers must equal the engine's rgba rendered at the same settings. Every render is written to disk (the delivered
frame and its ``layers/`` file) and read back the way a host reads it: the layers cut to the faces are rebuilt to
plate size exactly.
"""

import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfl_vfx.io.image import Image, read_header, read_image
from dfl_vfx.merge.merger import MergeSettings
from dfl_vfx.swap.engine import FrameResult, SwapEngine, SwapSettings
from dfl_vfx.swap.faces import faceset_plans
from dfl_vfx.swap.frame import write_frame
from dfl_vfx.swap.header import FaceRecord, read_face_records
from dfl_vfx.swap.layout import layers_path, read_layers

FRAME = 1003
BAKE = dict(erode=0.0, blur=25.0, opacity=1.0, face_exposure=0.0)  # settings A: what the layers are rendered with
LIVE = dict(erode=15.0, blur=60.0, opacity=0.6, face_exposure=0.5)  # settings B: what the artist dials in
BAKED_ONLY = dict(mask_mode="hull*learned-prd", color_transfer="rct")  # a landmark edge and the network's matte
HALF_EPSILON = 2.0 ** -10  # float16's machine epsilon: the spacing of half values in [1, 2)


def _plate(small_shot: Path) -> Image:
    return read_image(small_shot / "plate" / f"plate.{FRAME}.exr", pixel_type="native")


_OUT = itertools.count()


@dataclass
class Baked:
    """A render as a host finds it on disk: the delivered frame, its layers rebuilt to plate size, the faces."""

    rgba: Image  # the delivered frame (R, G, B, A over the plate's data window)
    layers: dict[str, np.ndarray]  # read_layers: plate-sized, float32
    faces: list[FaceRecord]  # the layers file's own header
    result: FrameResult  # what the engine had in memory before writing

    @property
    def origin(self) -> tuple[int, int]:
        return self.rgba.data_window.x, self.rgba.data_window.y


def _render(small_shot: Path, model: Path, plans: list, layers: tuple[str, ...], out: Path, window: str = "face",
            **live: float) -> Baked:
    merge = MergeSettings(**(BAKED_ONLY | live))
    engine = SwapEngine(SwapSettings(model=str(model), merge=merge, layers=layers, batch=4, layer_window=window))
    result = engine.swap_image(_plate(small_shot), plans, FRAME)
    target = out / f"render{next(_OUT)}" / f"plate.{FRAME}.exr"
    write_frame(target, result)
    names = [layer for layer in layers if layer != "rgba"]
    faces = read_face_records(read_header(layers_path(target)).metadata) if names else []
    return Baked(read_image(target), read_layers(target, names), faces, result)


def _channels(image: Image, names: str) -> np.ndarray:
    """The comma-listed channels as float32 (H, W, n), or (H, W) for one."""
    picked = image.pixels[..., [image.channels.index(n) for n in names.split(",")]].astype(np.float32)
    return picked[..., 0] if picked.shape[-1] == 1 else picked


# -- the host: what a Nuke or Blender node graph does, per docs/dev/swap-output.md ---------------------------------

def _disc(radius: float) -> np.ndarray:
    """The integer offsets (dx, dy) with dx^2 + dy^2 <= radius^2."""
    reach = math.floor(abs(radius))
    d = np.arange(-reach, reach + 1)
    return (d[:, None] ** 2 + d[None, :] ** 2 <= radius * radius).astype(np.uint8)


def _erode(matte: np.ndarray, radius: float) -> np.ndarray:
    """Erode (> 0) or dilate (< 0) over a disc, black outside the image; |radius| < 1 leaves it."""
    if abs(radius) < 1:
        return matte
    op = cv2.erode if radius > 0 else cv2.dilate
    return op(matte, _disc(radius), borderType=cv2.BORDER_CONSTANT, borderValue=0)


def _blur(matte: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian of ``sigma`` over taps -ceil(3 sigma)..ceil(3 sigma), black outside the image."""
    if sigma <= 0:
        return matte
    size = 2 * math.ceil(3 * sigma) + 1
    return cv2.GaussianBlur(matte, (size, size), sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)


def _plate_pixels(face: FaceRecord, erode: float, blur: float) -> tuple[float, float, float]:
    """(erode radius, clip radius, blur sigma) in plate pixels for a face, from its px_per_unit."""
    unit = face.px_per_unit
    kernel = int(blur) + (1 - int(blur) % 2)
    sigma = (0.3 * ((kernel - 1) * 0.5 - 1.0) + 0.8) * unit if blur > 0 else 0.0
    return erode / 2 * unit, max(blur, 0.0) / 2 * unit, sigma


def host_composite(layers: Baked, plate: np.ndarray, erode: float, blur: float, opacity: float,
                   face_exposure: float) -> np.ndarray:
    """The plate's RGBA (float32) with each face laid over it again from ``layers`` at the given live settings."""
    matte = layers.layers["matte"]
    coverage = layers.layers["raw"][..., 3]
    graded = _straight_face(layers) * 2.0 ** face_exposure
    out = plate.astype(np.float32).copy()
    ox, oy = layers.origin
    for face in layers.faces:  # in the header's order, each over the last
        x0, y0, x1, y1 = (v - o for v, o in zip(face.footprint, (ox, oy, ox, oy), strict=True))
        own_matte, own_coverage = np.zeros_like(matte), np.zeros_like(coverage)
        own_matte[y0:y1, x0:x1] = matte[y0:y1, x0:x1]
        own_coverage[y0:y1, x0:x1] = coverage[y0:y1, x0:x1]
        erode_px, clip_px, sigma = _plate_pixels(face, erode, blur)
        shaped = np.minimum(_erode(own_matte, erode_px), _erode(own_coverage, clip_px))
        final = _blur(shaped, sigma)
        final[final < 1 / 255] = 0
        final = final * opacity
        m = final[..., None]
        write = final > 0
        out[..., :3] = np.where(write[..., None], graded * m + out[..., :3] * (1 - m), out[..., :3])
        out[..., 3] = np.where(write, final + out[..., 3] * (1 - final), out[..., 3])
    return out


def assert_equal_within_half(host: np.ndarray, engine: Baked, plate: np.ndarray, layers: Baked,
                              face_exposure: float) -> None:
    """|host - engine| <= 2**-10 * max(|engine|, |plate|, |graded face|) + 2**-14, per value.

    2**-10 is float16's epsilon: one step between half values in [1, 2), two steps of rounding. The engine rounds its
    float32 composite to half once (half a step); the host reads the face from raw.RGB / raw.A and the matte from
    matte.A, all half, so its face is off by up to a step of itself and its matte by half a step below 1, which moves
    the result by that much of |face - plate|. 2**-14 (the smallest normal half) covers values near 0.
    """
    rgba = _channels(engine.rgba, "R,G,B,A")
    face = np.zeros_like(rgba)
    face[..., :3] = _straight_face(layers) * 2.0 ** face_exposure
    scale = np.maximum(np.maximum(np.abs(rgba), np.abs(plate.astype(np.float32))), np.abs(face))
    finite = np.isfinite(rgba) & np.isfinite(host) & np.isfinite(scale)
    diff = np.where(finite, np.abs(host - rgba), 0.0)
    ratio = diff / (HALF_EPSILON * np.where(finite, scale, 0.0) + 2.0 ** -14)
    worst = np.unravel_index(np.argmax(ratio), ratio.shape)
    assert ratio.max() <= 1.0, (f"host {host[worst]} vs engine {rgba[worst]} at {worst}: "
                                f"{ratio.max():.2f} half steps of the largest value")


def _straight_face(layers: Baked) -> np.ndarray:
    """raw.RGB / raw.A where raw.A > 0, else 0: the face before the matte, unpremultiplied."""
    raw = layers.layers["raw"]
    coverage = raw[..., 3:]
    return np.divide(raw[..., :3], coverage, out=np.zeros_like(raw[..., :3]), where=coverage > 0)


@pytest.fixture(scope="module")
def plans(facesets) -> list:
    return faceset_plans(facesets[1], [FRAME])[FRAME]


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("layers")


@pytest.fixture(scope="module")
def baked(small_shot, swap_model, plans, out) -> Baked:
    """One render at settings A with the layers a host needs."""
    return _render(small_shot, swap_model[1], plans, ("rgba", "matte", "raw"), out, **BAKE)


def test_the_header_gives_each_face_what_a_host_needs(baked: Baked, plans) -> None:
    faces = baked.faces
    assert faces == read_face_records(baked.rgba.metadata)  # both files carry the header
    assert len(faces) == len(plans) == 1
    face = faces[0]
    scale = math.sqrt(abs(np.linalg.det(face.matrix[:, :2])))
    assert face.px_per_unit == pytest.approx(1 / (4 * scale), rel=1e-6)
    erode_px, clip_px, sigma = _plate_pixels(face, BAKE["erode"], BAKE["blur"])
    assert (face.erode_px, face.clip_px) == (erode_px, clip_px)
    assert face.blur_sigma == pytest.approx(sigma, rel=1e-12)
    x0, y0, x1, y1 = face.footprint
    bx0, by0, bx1, by1 = face.bbox
    assert bx0 <= x0 < x1 <= bx1 and by0 <= y0 < y1 <= by1
    matte = baked.layers["matte"]
    ox, oy = baked.origin
    inside = np.zeros(matte.shape, bool)
    inside[y0 - oy:y1 - oy, x0 - ox:x1 - ox] = True
    assert matte[inside].max() > 0.5 and not matte[~inside].any()  # the face's matte lies inside its footprint
    assert not baked.layers["raw"][..., 3][~inside].any()


def test_plate_sized_layers_rebuilt_from_the_layers_file_are_bit_identical(baked: Baked) -> None:
    """What the layers file holds, padded back to the plate, is what the engine had (and what the delivered frame
    used to carry as channels) bit for bit; the file itself covers only the face's box."""
    target = Path(baked.rgba.path)
    rebuilt = read_layers(target, ["matte", "raw"], pixel_type="native")
    for name in ("matte", "raw"):
        engine = baked.result.planes[name]
        assert rebuilt[name].dtype == engine.dtype == np.float16 and rebuilt[name].shape == engine.shape
        assert np.array_equal(rebuilt[name].view(np.uint16), engine.view(np.uint16))
    window = read_header(layers_path(target)).data_window
    plate = baked.rgba.data_window
    assert window.width * window.height < 0.2 * plate.width * plate.height
    assert (window.x, window.y, window.right, window.bottom) == tuple(baked.faces[0].bbox)
    assert baked.rgba.channels == ["R", "G", "B", "A"]


def test_the_host_redoes_the_baked_settings(small_shot, baked: Baked) -> None:
    plate = _plate(small_shot).pixels[..., :4]
    host = host_composite(baked, plate, **BAKE)
    assert_equal_within_half(host, baked, plate, baked, BAKE["face_exposure"])


def test_the_host_redoes_other_live_settings_from_the_layers(small_shot, swap_model, plans, baked: Baked,
                                                             out) -> None:
    plate = _plate(small_shot).pixels[..., :4]
    host = host_composite(baked, plate, **LIVE)
    engine = _render(small_shot, swap_model[1], plans, ("rgba",), out, **LIVE)
    assert not layers_path(engine.rgba.path).exists()  # rgba alone: no layers file
    assert_equal_within_half(host, engine, plate, baked, LIVE["face_exposure"])
    # and the live settings did change the picture: the host did not just return the baked frame
    changed = np.abs(host[..., :3] - _channels(baked.rgba, "R,G,B")) > 1e-2
    assert changed.sum() > 500


def test_two_faces_are_redone_each_with_its_own_numbers(small_shot, swap_model, plans, out) -> None:
    second = dataclasses.replace(plans[0], landmarks=plans[0].landmarks * 0.8 + (-170.0, 40.0), index=1, track_id=7)
    faces = [plans[0], second]
    baked = _render(small_shot, swap_model[1], faces, ("rgba", "matte", "raw"), out, **BAKE)
    header = baked.faces
    assert header[0].px_per_unit != pytest.approx(header[1].px_per_unit)  # a smaller face: other pixels
    matte, (ox, oy) = baked.layers["matte"], baked.origin
    for face in header:  # both faces are on the plate, apart
        x0, y0, x1, y1 = face.footprint
        assert matte[y0 - oy:y1 - oy, x0 - ox:x1 - ox].max() > 0.5
    assert header[1].footprint[2] < header[0].footprint[0]
    plate = _plate(small_shot).pixels[..., :4]
    host = host_composite(baked, plate, **LIVE)
    engine = _render(small_shot, swap_model[1], faces, ("rgba",), out, **LIVE)
    assert_equal_within_half(host, engine, plate, baked, LIVE["face_exposure"])


@pytest.mark.parametrize("window", ["face", "display"])
def test_a_face_in_the_overscan_comes_back_in_place(small_shot, swap_model, plans, out, window: str) -> None:
    """The plate's data window starts at (-24, -24): a face half in the overscan. With the face window the layers
    come back whole; with the display window (for hosts that ignore data windows) exactly the display's part."""
    plate = _plate(small_shot)
    assert (plate.data_window.x, plate.data_window.y) == (-24, -24)
    shift = -plans[0].landmarks.min(axis=0) - (12.0, 8.0)  # the face's top-left landmark lands at (-12, -8)
    edge = [dataclasses.replace(plans[0], landmarks=plans[0].landmarks + shift)]
    baked = _render(small_shot, swap_model[1], edge, ("rgba", "mask", "matte", "face", "raw"), out, window, **BAKE)
    x0, y0, x1, y1 = baked.faces[0].bbox
    assert (x0, y0) == (-24, -24)  # the box reaches the data window's corner
    header = read_header(layers_path(baked.rgba.path))
    display = plate.display_window
    expected = (x0, y0, x1 - x0, y1 - y0) if window == "face" else (display.x, display.y, display.width,
                                                                     display.height)
    assert (header.data_window.x, header.data_window.y, header.data_window.width, header.data_window.height) == \
        expected
    assert header.display_window == display
    rebuilt = read_layers(baked.rgba.path, ["mask", "matte", "face", "raw"], pixel_type="native")
    in_display = np.zeros((plate.height, plate.width), bool)
    in_display[24:24 + display.height, 24:24 + display.width] = True
    for name, engine in baked.result.planes.items():
        assert engine[~in_display].any() and engine[in_display].any()  # the face has parts on both sides
        kept = engine if window == "face" else np.where(
            in_display if engine.ndim == 2 else in_display[..., None], engine, 0)
        assert np.array_equal(rebuilt[name].view(np.uint16), kept.view(np.uint16)), name


def test_opacity_zero_leaves_the_plate_bit_identical(small_shot, swap_model, plans, out) -> None:
    plate = _plate(small_shot).pixels
    baked = _render(small_shot, swap_model[1], plans, ("rgba", "mask"), out, **(LIVE | {"opacity": 0.0}))
    assert np.array_equal(baked.rgba.pixels[..., :4].astype(np.float16).view(np.uint16),
                          plate[..., :4].view(np.uint16))
    assert not baked.layers["mask"].any()


@pytest.mark.gpu("cuda_build")
def test_the_cuda_merge_writes_the_same_layers_and_live_settings(small_shot, swap_model, plans) -> None:
    outputs = {}
    for device, merge_backend in (("cpu", "native"), ("cuda:0", "cuda")):
        settings = SwapSettings(model=str(swap_model[0]), backend="torch", device=device,
                                merge=MergeSettings(**(BAKED_ONLY | LIVE)),
                                layers=("rgba", "mask", "matte", "face", "raw"), merge_backend=merge_backend)
        outputs[device] = SwapEngine(settings).swap_image(_plate(small_shot), plans, FRAME)
    host, gpu = outputs["cpu"], outputs["cuda:0"]
    assert host.layers.channels == gpu.layers.channels and "matte.A" in gpu.layers.channels
    assert read_face_records(host.image.metadata)[0].footprint == read_face_records(gpu.image.metadata)[0].footprint
    for image in ("image", "layers"):
        cpu_pixels, gpu_pixels = (getattr(r, image).pixels.astype(np.float32) for r in (host, gpu))
        diff = np.abs(cpu_pixels - gpu_pixels)
        # crop order (premultiplied on the GPU), lanczos tables and GPU convolutions differ slightly, never grossly
        assert np.nanmedian(diff) < 1e-3 and np.nanpercentile(diff, 99.9) < 5e-2
