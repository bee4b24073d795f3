"""A Nuke-style multi-layer plate through swap_frame: RGBA half with AOVs of other types (float depth, half normals,
uint object ids) comes out as the whole-frame swap gives it, the AOVs bit for bit, the studio attributes kept."""

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

import dfl_vfx.swap.frame as frame_module
from dfl_vfx.io.image import Image, read_header, read_image, write_image
from dfl_vfx.merge.merger import MergeSettings
from dfl_vfx.swap.engine import SwapEngine, SwapSettings
from dfl_vfx.swap.faces import faceset_plans
from dfl_vfx.swap.frame import swap_frame

FRAME = 1003
UINT32_MAX = 4294967295


def _aov_plate(small_shot: Path, folder: Path, aovs: dict[str, str], compression: str) -> Path:
    """The small shot's frame with ``aovs`` (name -> format) added: depth-like floats with a NaN and an Inf,
    unit normals in half, object ids 1..7919 in uint32 (given as normalised floats, as OpenImageIO converts them)."""
    plate = read_image(small_shot / "plate" / f"plate.{FRAME}.exr")
    h, w = plate.pixels.shape[:2]
    rng = np.random.default_rng(1)
    extra = []
    for fmt in aovs.values():
        if fmt == "uint32":
            ids = np.arange(h * w).reshape(h, w) % 7919 + 1
            extra.append((ids / UINT32_MAX).astype(np.float32))
        else:
            values = rng.standard_normal((h, w)).astype(np.float16 if fmt == "half" else np.float32)
            values.flat[[5, h * w // 2]] = (np.nan, np.inf)  # the second one in the face's rows
            extra.append(values.astype(np.float32))
    pixels = np.concatenate([plate.pixels, np.stack(extra, -1)], axis=-1)
    metadata = dict(plate.metadata) | {"studio:shot": "ABC_0100", "studio:take": 7}
    types = dict(plate.metadata_types) | {"worldToCamera": "matrix"}
    metadata["worldToCamera"] = tuple(float(i) for i in range(16))
    image = Image(np.ascontiguousarray(pixels), plate.channels + list(aovs), plate.data_window, plate.display_window,
                  plate.channel_formats + list(aovs.values()), metadata, types)
    path = folder / f"plate.{FRAME}.exr"
    write_image(path, image, compression)
    return path


def _native(path: Path, name: str) -> np.ndarray:
    """One channel as stored (uint32 ids as integers, floats as their bits)."""
    inp = oiio.ImageInput.open(str(path))
    spec = inp.spec()
    index = list(spec.channelnames).index(name)
    stored = spec.channelformats[index] if spec.channelformats else spec.format
    pixels = np.asarray(inp.read_image(0, 0, index, index + 1, stored))[..., 0]
    inp.close()
    return pixels.view(np.uint16 if pixels.dtype == np.float16 else np.uint32)


@pytest.mark.parametrize(("aovs", "compression"), [
    ({"depth.Z": "float", "N.x": "half", "N.y": "half"}, "zip"),
    ({"depth.Z": "float", "N.x": "half"}, "zips"),
    ({"id.object": "uint32", "depth.Z": "float"}, "zip"),
])
def test_a_multi_layer_plate_keeps_its_aovs_and_equals_a_whole_frame_swap(small_shot, facesets, swap_model,
                                                                          tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          aovs: dict[str, str],
                                                                          compression: str) -> None:
    plate = _aov_plate(small_shot, tmp_path, aovs, compression)
    if "id.object" in aovs:  # the plate holds the ids themselves
        ids = _native(plate, "id.object")
        assert ids.min() == 1 and ids.max() == 7919
    engine = SwapEngine(SwapSettings(model=str(swap_model[1]), merge=MergeSettings(mask_mode="hull"),
                                     layers=("rgba", "mask")))
    plans = faceset_plans(facesets[1], [FRAME])[FRAME]
    reused = tmp_path / "reused" / plate.name
    assert len(swap_frame(engine, plate, reused, FRAME, plans).faces) == 1
    monkeypatch.setattr(frame_module, "plate_blocks", lambda source, target: None)
    whole = tmp_path / "whole" / plate.name
    swap_frame(engine, plate, whole, FRAME, plans)

    out = read_header(reused)
    assert out.channels == read_header(plate).channels and out.channel_formats == read_header(plate).channel_formats
    assert out.metadata["compression"] == compression and out.metadata["studio:shot"] == "ABC_0100"
    assert out.metadata["studio:take"] == 7 and tuple(out.metadata["worldToCamera"]) == tuple(range(16))
    for name in out.channels:
        assert np.array_equal(_native(reused, name), _native(whole, name)), name
    for name in aovs:  # passed through, bit for bit
        assert np.array_equal(_native(reused, name), _native(plate, name)), name
    assert not np.array_equal(_native(reused, "R"), _native(plate, "R"))  # the face was swapped
