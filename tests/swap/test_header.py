"""The swap header's owner: typed records, an exact round trip through an EXR, one-line errors naming the file, and
the readers (rerun skip, eval, contact sheet) going through it."""

import json
from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.eval.shot import swap_faces
from dfl_vfx.io.image import Image, read_header, write_image
from dfl_vfx.io.sequence import open_sequence
from dfl_vfx.swap.contact_sheet import _face_box
from dfl_vfx.swap.header import (
    FACES_ATTRIBUTE,
    SWAP_ATTRIBUTE,
    FaceRecord,
    SwapHeader,
    SwapRecord,
    faces_from_metadata,
    output_settings_hash,
    read_face_records,
    read_swap_record,
)


def swap_record(frame: int = 1001) -> SwapRecord:
    return SwapRecord(model="model.dfm", model_sha256="ab" * 32, backend="onnxruntime", device="cpu",
                      merge_backend="cpu", settings={"erode": 10.0, "blur": 25.0, "mask_mode": "hull"},
                      layers=("rgba", "matte", "raw"), settings_hash="0123456789abcdef", frame=frame,
                      dfl_vfx_version="0.1.0")


def face_record(index: int = 0, shift: float = 0.0) -> FaceRecord:
    rng = np.random.default_rng(index)
    return FaceRecord(index=index, track_id=3 + index, landmarks=np.round(rng.uniform(100, 300, (68, 2)) + shift, 4),
                      matrix=np.round(np.array([[0.31, 0.04, -12.5], [-0.04, 0.31, -40.25]]) * (1 + index), 8),
                      resolution=128, face_type="whole_face", bbox=(90, 80, 330, 320),
                      footprint=(100, 95, 310, 305), px_per_unit=0.8064516129032258, erode_px=-4.03,
                      clip_px=10.080645161290322, blur_sigma=3.2661290322580645)


def test_the_header_round_trips_exactly_through_an_exr(tmp_path: Path) -> None:
    header = SwapHeader(swap_record(), [face_record(0), face_record(1, shift=0.123456789)])
    image = Image.from_array(np.full((4, 6, 4), 0.5, np.float32))
    image.metadata.update(header.to_metadata())
    write_image(tmp_path / "f.1001.exr", image)
    metadata = read_header(tmp_path / "f.1001.exr").metadata
    assert SwapHeader.from_metadata(metadata, tmp_path / "f.1001.exr") == header
    decoded = json.loads(metadata[FACES_ATTRIBUTE])[1]  # the file holds the documented JSON keys
    assert sorted(decoded) == sorted(["index", "track_id", "landmarks", "matrix", "resolution", "face_type", "bbox",
                                      "footprint", "px_per_unit", "erode_px", "clip_px", "blur_sigma"])
    assert json.loads(metadata[SWAP_ATTRIBUTE])["layers"] == ["rgba", "matte", "raw"]
    assert output_settings_hash(metadata) == "0123456789abcdef"


def test_unknown_keys_are_kept_and_old_headers_without_the_live_numbers_read() -> None:
    entry = face_record().to_dict() | {"future_key": [1, 2]}
    for name in ("footprint", "px_per_unit", "erode_px", "clip_px", "blur_sigma"):
        del entry[name]
    entry["bbox"] = [89.5, 80.0, 329.25, 320.0]  # a box in fractional pixels (another writer): the pixels it covers
    (face,) = faces_from_metadata(json.dumps([entry]))
    assert face.footprint is None and face.blur_sigma is None and face.bbox == (89, 80, 330, 320)
    assert face.extra == {"future_key": [1, 2]}
    assert face.to_dict() == entry | {"bbox": [89, 80, 330, 320]}
    swap = swap_record().to_dict() | {"host": "farm-12"}
    assert SwapRecord.from_metadata(json.dumps(swap)).to_dict() == swap


@pytest.mark.parametrize(
    ("attribute", "text", "reason"),
    [
        (SWAP_ATTRIBUTE, "{not json", "not JSON"),
        (SWAP_ATTRIBUTE, json.dumps(["a list"]), "an object was expected"),
        (SWAP_ATTRIBUTE, json.dumps({k: v for k, v in swap_record().to_dict().items() if k != "settings_hash"}),
         "settings_hash is missing"),
        (SWAP_ATTRIBUTE, json.dumps(swap_record().to_dict() | {"frame": "1001"}), "frame must be an integer"),
        (FACES_ATTRIBUTE, json.dumps({"index": 0}), "a list was expected"),
        (FACES_ATTRIBUTE, json.dumps([face_record().to_dict() | {"landmarks": [[1, 2]] * 5}]),
         "face 0: landmarks must be finite numbers of shape [68, 2]"),
        (FACES_ATTRIBUTE, json.dumps([face_record().to_dict() | {"face_type": "torso"}]),
         "face 0: face_type 'torso' is not a face type"),
        (FACES_ATTRIBUTE, json.dumps([face_record().to_dict(), face_record().to_dict() | {"bbox": [1, 2, 3]}]),
         "face 1: bbox must be [x0, y0, x1, y1]"),
        (FACES_ATTRIBUTE, json.dumps([face_record().to_dict() | {"footprint": [1, 2, None, 4]}]),
         "face 0: footprint must be a finite number"),
        (FACES_ATTRIBUTE, json.dumps([face_record().to_dict() | {"blur_sigma": "wide"}]),
         "face 0: blur_sigma must be a finite number"),
    ],
)
def test_a_malformed_header_is_one_line_naming_the_file(attribute: str, text: str, reason: str) -> None:
    metadata = SwapHeader(swap_record(), [face_record()]).to_metadata() | {attribute: text}
    with pytest.raises(DflError) as error:
        SwapHeader.from_metadata(metadata, "/shots/sh010/out/sh010.1001.exr")
    message = str(error.value)
    assert message.startswith(f"/shots/sh010/out/sh010.1001.exr: malformed {attribute} header (")
    assert reason in message and "\n" not in message and message.endswith("re-render this frame with `dfl-vfx swap`")


def test_frames_without_a_header_and_rerun_checks() -> None:
    assert SwapHeader.from_metadata({"oiio:ColorSpace": "ACEScg"}) is None
    assert read_swap_record({}) is None and read_face_records({}) is None
    assert output_settings_hash({}) is None
    assert output_settings_hash({SWAP_ATTRIBUTE: "{broken"}) is None  # a rerun swaps such a frame again
    with pytest.raises(DflError, match=f"f.exr: malformed {FACES_ATTRIBUTE} header \\(the attribute is missing"):
        SwapHeader.from_metadata({SWAP_ATTRIBUTE: swap_record().to_metadata()}, "f.exr")


def _write_frame(path: Path, faces: str) -> None:
    image = Image.from_array(np.full((40, 50, 4), 0.5, np.float32))
    image.metadata[FACES_ATTRIBUTE] = faces
    write_image(path, image)


def test_eval_and_the_contact_sheet_read_faces_through_the_header_module(tmp_path: Path) -> None:
    from dfl_vfx.face.face_type import FaceType

    _write_frame(tmp_path / "s.1001.exr", json.dumps([face_record(0).to_dict()]))
    (face,) = swap_faces(open_sequence(str(tmp_path / "s.####.exr")))
    np.testing.assert_array_equal(face.landmarks, face_record(0).landmarks)
    assert face.face_type is FaceType.WHOLE_FACE and face.resolution == 128 and face.frame == 1001
    image = Image.from_array(np.zeros((400, 500, 3), np.float32))
    image.metadata[FACES_ATTRIBUTE] = json.dumps([face_record(0).to_dict()])
    assert _face_box(image, (400, 500)) == (90, 80, 330, 320)

    _write_frame(tmp_path / "s.1002.exr", json.dumps([face_record(0).to_dict() | {"matrix": [[1, 0]]}]))
    with pytest.raises(DflError, match=r"s\.1002\.exr: malformed dfl_vfx:faces header \(face 0: matrix must be"):
        swap_faces(open_sequence(str(tmp_path / "s.####.exr")))
