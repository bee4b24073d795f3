"""The per-frame swap engine: geometry and colour round trip, untouched pixels, layers, header, HDR and NaN."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.align import get_transform_mat
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.io.image import read_image
from dfl_vfx.merge.merger import MergeSettings
from dfl_vfx.swap.engine import FrameResult, SwapEngine, SwapSettings, face_record
from dfl_vfx.swap.faces import faceset_plans
from dfl_vfx.swap.header import SwapHeader

FRAME = 1003


def _engine(runtime, **merge) -> SwapEngine:
    options = {"color_transfer": "none", "blur": 0.0, "mask_mode": "full"} | merge
    settings = SwapSettings(model="echo.onnx", merge=MergeSettings(**options), layers=("rgba", "mask", "face", "raw"))
    return SwapEngine(settings, runtime=runtime)


def _plate(small_shot: Path):
    return read_image(small_shot / "plate" / f"plate.{FRAME}.exr", pixel_type="native")


def _channel(result: FrameResult, name: str) -> np.ndarray:
    """A channel of the delivered frame (R, G, B, A) or a layer's channel over the plate (mask.A, raw.R ...)."""
    if "." in name:
        layer, channel = name.split(".")
        plane = result.planes[layer]
        return plane if plane.ndim == 2 else plane[..., "RGBA".index(channel)]
    return result.image.pixels[..., result.image.channels.index(name)]


@pytest.fixture()
def plans(facesets):
    return faceset_plans(facesets[1], [FRAME])[FRAME]


def test_identity_swap_reproduces_the_plate_inside_the_face(small_shot, plans, make_echo) -> None:
    runtime = make_echo(256)
    plate = _plate(small_shot)
    before = plate.pixels.copy()
    result = _engine(runtime).swap_image(plate, plans, FRAME)
    out = result.image
    mask = _channel(result, "mask.A").astype(np.float32)
    inside = mask > 0.999
    assert inside.sum() > 2000  # the face covers a few thousand pixels of the 640x360 plate
    rgb_in = before[..., :3].astype(np.float32)[inside]
    rgb_out = out.pixels[..., :3].astype(np.float32)[inside]
    # lanczos crop to 256 px then bicubic warp back: the face comes back within a few percent of its level
    assert np.median(np.abs(rgb_out - rgb_in) / (np.abs(rgb_in) + 1e-2)) < 0.03
    assert runtime.calls == [len(plans)]
    # raw is premultiplied by its coverage once: unpremultiplied, even its soft edge shows the plate's colours
    raw_a = _channel(result, "raw.A").astype(np.float32)
    edge = (raw_a > 0.1) & (raw_a < 0.9)
    assert edge.sum() > 100
    raw_rgb = result.planes["raw"][..., :3].astype(np.float32)[edge]
    unpremultiplied = raw_rgb / raw_a[edge][:, None]
    plate_rgb = before[..., :3].astype(np.float32)[edge]
    assert np.median(np.abs(unpremultiplied - plate_rgb) / (np.abs(plate_rgb) + 1e-2)) < 0.1


def test_pixels_outside_the_mask_are_bit_identical_in_half(small_shot, plans, make_echo) -> None:
    plate = _plate(small_shot)
    assert plate.pixels.dtype == np.float16
    before = plate.pixels.copy()
    result = _engine(make_echo(64), blur=40.0).swap_image(plate, plans, FRAME)
    out = result.image
    assert out.pixels.dtype == np.float16 and result.layers.pixels.dtype == np.float16
    mask = _channel(result, "mask.A").astype(np.float32)
    outside = mask == 0
    assert 0.5 < outside.mean() < 0.999
    rgba = [out.channels.index(c) for c in "RGBA"]
    assert np.array_equal(out.pixels[..., rgba][outside].view(np.uint16), before[..., :4][outside].view(np.uint16))
    changed = np.any(out.pixels[..., :3] != before[..., :3], axis=2)
    assert changed[mask > 0.5].mean() > 0.5  # and the face itself was written


def test_highlights_above_one_survive_and_nan_outside_the_face_is_kept(small_shot, plans, make_echo) -> None:
    plate = _plate(small_shot)
    x, y = (np.asarray(plans[0].landmarks).mean(axis=0) - (plate.data_window.x, plate.data_window.y)).astype(int)
    plate.pixels[y - 3:y + 3, x - 3:x + 3, :3] = 6.0  # a specular on the face, far above 1
    plate.pixels[2, 2, 0] = np.nan
    plate.pixels[3, 3, 1] = np.inf
    out = _engine(make_echo(256)).swap_image(plate, plans, FRAME).image
    highlight = out.pixels[y - 1:y + 1, x - 1:x + 1, :3].astype(np.float32)
    assert highlight.min() > 3.0  # the ACEScct round trip keeps scene-linear values far above 1
    assert np.isnan(out.pixels[2, 2, 0]) and np.isinf(out.pixels[3, 3, 1])


def test_layers_windows_metadata_and_header(small_shot, plans, make_echo) -> None:
    plate = _plate(small_shot)
    plate.metadata["studio:shot"] = "sh010"
    result = _engine(make_echo(64)).swap_image(plate, plans, FRAME)
    out, layers = result.image, result.layers
    assert out.channels == ["R", "G", "B", "A"]  # the delivered frame holds the plate's channels only
    assert layers.channels == ["face.R", "face.G", "face.B", "face.A", "mask.A", "raw.R", "raw.G", "raw.B", "raw.A"]
    assert out.data_window == plate.data_window and out.display_window == plate.display_window
    assert layers.display_window == plate.display_window
    assert out.metadata["studio:shot"] == "sh010" and out.metadata["compression"] == "zip"  # the plate's
    assert layers.metadata == {k: v for k, v in out.metadata.items() if k != "compression"}  # the writer sets it
    # the layers file covers the faces' boxes: everything outside it is 0 in the plate-sized layers
    x0, y0, x1, y1 = result.faces[0].bbox
    assert (layers.data_window.x, layers.data_window.y, layers.data_window.right, layers.data_window.bottom) == \
        (x0, y0, x1, y1)
    ox, oy = out.data_window.x, out.data_window.y
    outside = np.ones(out.pixels.shape[:2], bool)
    outside[y0 - oy:y1 - oy, x0 - ox:x1 - ox] = False
    for plane in result.planes.values():
        assert not plane[outside].any() and plane[~outside].any()
    np.testing.assert_array_equal(layers.pixels[..., 4], result.planes["mask"][y0 - oy:y1 - oy, x0 - ox:x1 - ox])
    mask = _channel(result, "mask.A").astype(np.float32)
    face_a = _channel(result, "face.A").astype(np.float32)
    np.testing.assert_allclose(face_a, mask, atol=2e-3)  # face is premultiplied by the final matte
    raw_a = _channel(result, "raw.A").astype(np.float32)
    assert raw_a.max() > 0.99 and (raw_a > 0).sum() >= (mask > 0).sum()
    header = SwapHeader.from_metadata(out.metadata, "out.exr")
    assert header.faces == [face_record(face) for face in result.faces] and len(header.faces) == len(plans)
    expected = get_transform_mat(plans[0].landmarks, 64, FaceType.parse("f"))
    np.testing.assert_allclose(header.faces[0].matrix, expected, atol=1e-6)
    np.testing.assert_allclose(header.faces[0].landmarks, plans[0].landmarks, atol=1e-3)
    assert header.faces[0].footprint is not None and header.faces[0].px_per_unit > 0
    assert header.swap.frame == FRAME and header.swap.merge_backend == "cpu"
    assert header.swap.layers == ("rgba", "mask", "face", "raw") and header.swap.settings["mask_mode"] == "full"


def test_a_frame_without_faces_passes_through(small_shot, make_echo) -> None:
    plate = _plate(small_shot)
    before = plate.pixels.copy()
    result = _engine(make_echo(64)).swap_image(plate, [], FRAME)
    out = result.image
    assert np.array_equal(out.pixels[..., :4].view(np.uint16), before[..., :4].view(np.uint16))
    assert not _channel(result, "mask.A").any()
    # the layers file of a frame without a face: one zero pixel at the display window's origin
    window = result.layers.data_window
    assert (window.x, window.y, window.width, window.height) == (plate.display_window.x, plate.display_window.y, 1, 1)
    assert not result.layers.pixels.any()
    assert SwapHeader.from_metadata(out.metadata).faces == []


def test_erode_shrinks_and_negative_erode_grows_the_matte(small_shot, plans, make_echo) -> None:
    areas = {}
    for erode in (-100, 0, 100):
        out = _engine(make_echo(64), mask_mode="hull", erode=float(erode)).swap_image(_plate(small_shot), plans, FRAME)
        areas[erode] = float((_channel(out, "mask.A").astype(np.float32) > 0.5).sum())
    assert areas[-100] > areas[0] * 1.05 and areas[100] < areas[0] * 0.95


def test_an_opaque_plate_without_alpha_gets_one(small_shot, plans, make_echo) -> None:
    plate = _plate(small_shot)
    keep = [plate.channels.index(c) for c in "RGB"]
    plate.pixels = np.ascontiguousarray(plate.pixels[..., keep])
    plate.channels, plate.channel_formats = ["R", "G", "B"], ["half"] * 3
    out = _engine(make_echo(64)).swap_image(plate, plans, FRAME)
    alpha = _channel(out, "A").astype(np.float32)
    assert alpha.min() == 1.0


def test_face_type_disagreement_is_a_clear_error(make_echo) -> None:
    settings = SwapSettings(model="echo.onnx", face_type="wf")
    with pytest.raises(DflError, match="--face-type wf disagrees"):
        SwapEngine(settings, runtime=make_echo(64))


def test_the_cuda_merge_without_a_gpu_is_a_clear_error(make_echo) -> None:
    from dfl_vfx import native

    if native.cuda_available():
        pytest.skip("this machine has a usable GPU; the error is for machines without one")
    with pytest.raises(DflError, match="--merge-backend cuda: .*use --merge-backend native"):
        SwapEngine(SwapSettings(model="echo.onnx", merge_backend="cuda"), runtime=make_echo(64))


@pytest.mark.gpu("cuda_build")
def test_cuda_merge_matches_the_cpu_merge(small_shot, plans, make_echo) -> None:
    outputs = {}
    for backend in ("native", "cuda"):
        settings = SwapSettings(model="echo.onnx", merge=MergeSettings(color_transfer="none", blur=30, erode=10),
                                layers=("rgba", "mask", "face", "raw"), merge_backend=backend)
        outputs[backend] = SwapEngine(settings, runtime=make_echo(128)).swap_image(_plate(small_shot), plans, FRAME)
    for image in ("image", "layers"):
        cpu, gpu = (getattr(outputs[b], image) for b in ("native", "cuda"))
        assert cpu.channels == gpu.channels and cpu.data_window == gpu.data_window
        diff = np.abs(cpu.pixels.astype(np.float32) - gpu.pixels.astype(np.float32))
        assert np.nanmax(diff) <= 2e-3  # half rounding of the same float math (contract: 2e-5 before rounding)


def test_motion_blur_follows_the_landmark_motion(small_shot, plans, make_echo) -> None:
    moving = [dataclasses.replace(plan, motion=np.array([12.0, 0.0])) for plan in plans]
    still_result = _engine(make_echo(128), motion_blur=100).swap_image(_plate(small_shot), plans, FRAME)
    still = still_result.image
    blurred = _engine(make_echo(128), motion_blur=100).swap_image(_plate(small_shot), moving, FRAME).image
    mask = _channel(still_result, "mask.A").astype(np.float32) > 0.99
    rgb_still = still.pixels[..., 1].astype(np.float32)[mask]
    rgb_blur = blurred.pixels[..., 1].astype(np.float32)[mask]
    assert np.abs(rgb_blur - rgb_still).mean() > 1e-3  # the face was smeared along x
    # horizontal detail drops more than vertical detail
    def energy(image, axis):
        g = image.pixels[..., 1].astype(np.float32)
        d = g[:-1, 1:] - g[:-1, :-1] if axis == 1 else g[1:, :-1] - g[:-1, :-1]
        return np.abs(d)[mask[:-1, :-1]].mean()
    assert energy(blurred, 1) / energy(still, 1) < energy(blurred, 0) / energy(still, 0)


def test_two_faces_go_through_one_batch_and_one_matte(small_shot, plans, make_echo) -> None:
    runtime = make_echo(64)
    second = dataclasses.replace(plans[0], landmarks=plans[0].landmarks + (-200.0, 0.0), index=1, track_id=7)
    result = _engine(runtime, mask_mode="hull").swap_image(_plate(small_shot), [plans[0], second], FRAME)
    out = result.image
    assert runtime.calls == [2]
    faces = SwapHeader.from_metadata(out.metadata).faces
    assert [f.track_id for f in faces] == [plans[0].track_id, 7]
    mask = _channel(result, "mask.A").astype(np.float32)
    ox, oy = out.data_window.x, out.data_window.y
    window = result.layers.data_window  # the layers file spans both faces' boxes
    assert (window.x, window.right) == (min(f.bbox[0] for f in faces), max(f.bbox[2] for f in faces))
    for face in faces:
        x0, y0, x1, y1 = face.bbox
        assert mask[y0 - oy:y1 - oy, x0 - ox:x1 - ox].max() > 0.99  # both faces are in the one matte


def test_channels_in_any_order_and_extra_channels_pass_through(small_shot, plans, make_echo) -> None:
    plate = _plate(small_shot)
    expected = _engine(make_echo(64)).swap_image(_plate(small_shot), plans, FRAME)
    depth = np.full(plate.pixels.shape[:2] + (1,), 42.5, np.float16)
    order = [plate.channels.index(c) for c in "ABGR"]
    plate.pixels = np.ascontiguousarray(np.concatenate([depth, plate.pixels[..., order]], axis=2))
    plate.channels = ["Z", "A", "B", "G", "R"]
    plate.channel_formats = ["half"] * 5
    out = _engine(make_echo(64)).swap_image(plate, plans, FRAME)
    assert out.image.channels == ["Z", "A", "B", "G", "R"]
    assert np.all(out.image.pixels[..., 0] == np.float16(42.5))
    for c in "RGBA":
        assert np.array_equal(_channel(out, c).view(np.uint16), _channel(expected, c).view(np.uint16))


@pytest.mark.gpu("cuda_build")
def test_gpu_resident_swap_matches_the_host_swap(small_shot, plans, swap_model) -> None:
    outputs = {}
    for device, merge_backend in (("cpu", "native"), ("cuda:0", "cuda")):
        settings = SwapSettings(model=str(swap_model[0]), backend="torch", device=device,
                                merge=MergeSettings(color_transfer="rct", blur=30), layers=("rgba", "mask", "face"),
                                merge_backend=merge_backend)
        engine = SwapEngine(settings)
        assert engine.merger_for(engine.plate_space(_plate(small_shot))).device_stage == (device != "cpu")
        outputs[device] = engine.swap_image(_plate(small_shot), plans, FRAME).image
    host, gpu = (outputs[d].pixels.astype(np.float32) for d in ("cpu", "cuda:0"))
    diff = np.abs(host - gpu)
    # crop order (premultiplied on the GPU), lanczos tables and GPU convolutions differ slightly, never grossly
    assert np.median(diff) < 1e-3 and np.percentile(diff, 99.9) < 5e-2


def test_the_layer_window_counts_in_the_settings_hash_only_with_a_layers_file(make_echo) -> None:
    def digest(layers: tuple[str, ...], window: str) -> str:
        return SwapEngine(SwapSettings(model="echo.onnx", layers=layers, layer_window=window),
                          runtime=make_echo(64)).settings_hash

    assert digest(("rgba", "matte", "raw"), "face") != digest(("rgba", "matte", "raw"), "display")
    assert digest(("rgba",), "face") == digest(("rgba",), "display")  # no layers file: the frame is the same
    with pytest.raises(DflError, match="layer_window corner: unknown; use face, display"):
        SwapSettings(model="echo.onnx", layer_window="corner").validate()
