"""DeepFaceLab aligned JPEGs: APP15 metadata read safely, malicious pickles refused, import into a faceset."""

import builtins
import json
import math
import os
import pickle
import re
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.align import transform_points
from dfl_vfx.face.pose import estimate_pitch_yaw_roll
from dfl_vfx.faceset.dfljpg import (
    MAX_METADATA_BYTES,
    MAX_TUPLE_NESTING,
    import_dfl_faceset,
    jpeg_segments,
    read_dfl_metadata,
)
from dfl_vfx.faceset.faceset import Faceset


class _RunsShellCommand:
    """Pickles to os.system(command): executing it would create the sentinel file."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Evaluates:
    """Pickles to builtins.eval(expression)."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def __reduce__(self):
        return (builtins.eval, (self.expression,))


class _Calls:
    """Pickles to ``function(*args)``, and with ``state`` to a BUILD of that state on the result."""

    def __init__(self, function, *args, state=None) -> None:
        self.function, self.args, self.state = function, args, state

    def __reduce__(self):
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_read_metadata_round_trips_arrays(tmp_path, kit, real_faces):
    face = real_faces["astronaut"]
    meta = kit.dfl_metadata(face)
    path = _write(tmp_path / "00001_0.jpg", kit.jpeg_with_app15(face.aligned, kit.dfl_pickle(meta)))
    back = read_dfl_metadata(path)
    assert back.keys() == meta.keys()
    for key in ("landmarks", "source_landmarks", "image_to_face_mat", "source_rect"):
        assert back[key].dtype == meta[key].dtype
        np.testing.assert_array_equal(back[key], meta[key])
    assert back["face_type"] == "whole_face" and back["source_filename"] == "00001.png"
    np.testing.assert_array_equal(back["seg_ie_polys"][0]["pts"], meta["seg_ie_polys"][0]["pts"])
    # the pixels still decode: the APP15 segment sits between SOI and the rest of the JPEG
    assert cv2.imread(str(path)).shape == (kit.SIZE, kit.SIZE, 3)


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_numpy_pickles_of_every_protocol_load(tmp_path, kit, protocol):
    meta = {"landmarks": np.arange(136, dtype=np.float32).reshape(68, 2), "scale": np.float64(0.5), "ids": {1, 2}}
    jpeg = kit.jpeg_with_app15(kit.astronaut_crop(32), pickle.dumps(meta, protocol=protocol))
    back = read_dfl_metadata(_write(tmp_path / "a.jpg", jpeg))
    np.testing.assert_array_equal(back["landmarks"], meta["landmarks"])
    assert back["scale"] == 0.5 and back["ids"] == {1, 2}


def test_numpy1_module_names_load(tmp_path, kit):
    """DeepFaceLab ran numpy 1, whose pickles name numpy.core.multiarray."""
    payload = pickle.dumps({"m": np.eye(2, 3)}, protocol=3)
    assert b"numpy._core.multiarray" in payload
    payload = payload.replace(b"numpy._core.", b"numpy.core.")
    back = read_dfl_metadata(_write(tmp_path / "a.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), payload)))
    np.testing.assert_array_equal(back["m"], np.eye(2, 3))


def test_plain_jpeg_has_no_metadata(tmp_path, kit):
    assert read_dfl_metadata(_write(tmp_path / "a.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), None))) is None


def test_segment_walk_stops_at_scan_data(kit):
    jpeg = kit.jpeg_with_app15(kit.astronaut_crop(32), b"payload")
    segments = jpeg_segments(jpeg, "a.jpg")
    assert segments[0] == (0xEF, b"payload")
    assert 0xDB in [marker for marker, _ in segments]  # quantisation tables come before SOS


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n", "not a JPEG file"),
        (b"\xff\xd8\xff\xef\x00\x40abc", "overruns the file"),
        (b"\xff\xd8\x12\x34", "expected a marker"),
    ],
)
def test_corrupt_files_are_dfl_errors(tmp_path, data, message):
    with pytest.raises(DflError, match=message):
        read_dfl_metadata(_write(tmp_path / "bad.jpg", data))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path, kit):
    sentinel = tmp_path / "pwned"
    payload = pickle.dumps({"face_type": "whole_face", "x": _RunsShellCommand(f"touch {sentinel}")}, protocol=3)
    assert b"system" in payload  # the payload really calls the shell when unpickled naively
    path = _write(tmp_path / "evil_0.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), payload))
    with pytest.raises(
        DflError,
        match=rf"^{path}: refused to load DeepFaceLab metadata: it references (posix|os)\.system, "
        "which is not plain data$",
    ):
        read_dfl_metadata(path)
    assert not sentinel.exists()


def test_eval_payload_is_refused(tmp_path, kit):
    sentinel = tmp_path / "pwned"
    code = f"open({str(sentinel)!r}, 'w').close()"
    payload = pickle.dumps([_Evaluates(code)], protocol=4)
    path = _write(tmp_path / "evil.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), payload))
    with pytest.raises(DflError, match=r"it references builtins\.eval, which is not plain data"):
        read_dfl_metadata(path)
    assert not sentinel.exists()


def test_persistent_ids_are_refused(tmp_path, kit):
    import io

    class _WithPersistentId(pickle.Pickler):
        def persistent_id(self, obj):
            return "external" if obj == "ref" else None

    buffer = io.BytesIO()
    _WithPersistentId(buffer, protocol=3).dump({"a": "ref"})
    path = _write(tmp_path / "p.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), buffer.getvalue()))
    with pytest.raises(DflError, match="refused to load DeepFaceLab metadata: it uses a persistent id"):
        read_dfl_metadata(path)


REFUSED = "refused to load DeepFaceLab metadata"
GIB4 = 2**32
_reconstruct = np._core.multiarray._reconstruct


def _payload(value) -> bytes:
    return pickle.dumps({"face_type": "whole_face", "x": value}, protocol=3)


# Pickles that allocate by a size argument (or build something that does) instead of holding data. Under a plain
# unpickler each takes gigabytes from a payload of a few dozen bytes; all must be refused before they allocate.
_SIZE_ALLOCATING = {
    "bytearray(2**32)": (
        _payload(_Calls(bytearray, GIB4)), r"it calls bytearray\(4294967296\), which allocates by size"),
    "bytes(2**32)": (_payload(_Calls(bytes, GIB4)), r"it references builtins\.bytes, which is not plain data"),
    "numpy.zeros(2**32)": (_payload(_Calls(np.zeros, GIB4)), r"it references numpy\.\S*zeros, which is not plain data"),
    "numpy.ndarray((2**28,), 'O')": (
        _payload(_Calls(np.ndarray, (2**28,), "O")), r"it calls numpy\.ndarray, which allocates an array by its shape"),
    "_reconstruct(ndarray, (2**32,), 'u1')": (
        _payload(_Calls(_reconstruct, np.ndarray, (GIB4,), b"u1")),
        rf"it allocates arrays of 4294967296 bytes by their shape, more than the {MAX_METADATA_BYTES}-byte cap"),
    "many small _reconstruct": (
        _payload([_Calls(_reconstruct, np.ndarray, (2**16,), b"u1") for _ in range(17)]),
        rf"it allocates arrays of {17 * 2**16} bytes by their shape"),
    "scalar(dtype('V2**30'))": (
        _payload(_Calls(np._core.multiarray.scalar, np.dtype(f"V{2**30}"))),
        r"it uses the numpy dtype \|V1073741824, which is not"),
    "BYTEARRAY8 of 2**32": (
        b"\x80\x05\x96" + struct.pack("<Q", GIB4) + b".", r"it declares a bytearray of 4294967296 bytes"),
    "NEWOBJ numpy.ndarray": (b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x00\x10\x85X\x01\x00\x00\x00O\x86\x81.",
                             r"it creates an object from its class \(NEWOBJ\)"),
}


# An object array's state: numpy sizes the array by the shape (1 GiB here), not by the list, and then segfaults.
_OBJECT_ARRAY_BUILD = _payload(
    _Calls(_reconstruct, np.ndarray, (0,), b"b", state=(1, (2**27,), np.dtype("O"), False, [])))


@pytest.mark.parametrize("case", _SIZE_ALLOCATING)
def test_size_allocating_payloads_are_refused_naming_the_file(tmp_path, kit, case):
    payload, reason = _SIZE_ALLOCATING[case]
    assert len(payload) < 2048  # a tiny file
    path = _write(tmp_path / "crafted_0.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), payload))
    with pytest.raises(DflError, match=rf"^{re.escape(str(path))}: {REFUSED}: {reason}") as err:
        read_dfl_metadata(path)
    assert "\n" not in str(err.value)


_MEASURE_RSS = """
import json, resource, sys
from dfl_vfx.errors import DflError
from dfl_vfx.faceset.dfljpg import read_dfl_metadata

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

results = {}
for path in sys.argv[1:]:
    before = peak_mb()
    try:
        outcome = repr(read_dfl_metadata(path))
    except DflError as exc:
        outcome = str(exc)
    results[path] = [outcome, peak_mb() - before]
print(json.dumps(results))
"""


def _read_in_fresh_process(paths: list[str]) -> dict[str, list]:
    """read_dfl_metadata on each path in a fresh process (a crash there fails one test, not the run): its result
    or one-line error, and how much the peak RSS grew (MB)."""
    run = subprocess.run([sys.executable, "-c", _MEASURE_RSS, *paths], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def test_crafted_payloads_take_no_memory(tmp_path, kit):
    """The tester's 2 KB JPEG holding bytearray(2**32) peaked at 4.6 GB; a 9-byte pickle naming memo index 2**31
    made the C unpickler allocate 32 GB. Peak RSS of a fresh process reading them must stay small."""
    payloads = {
        "bytearray.jpg": _payload(_Calls(bytearray, GIB4)),
        "memo_index.jpg": b"\x80\x03}r\xff\xff\xff\x7f.",  # LONG_BINPUT 2**31 - 1: {} stored at that memo index
        "bytearray8.jpg": _SIZE_ALLOCATING["BYTEARRAY8 of 2**32"][0],
        "object_build.jpg": _OBJECT_ARRAY_BUILD,
    }
    paths = [str(_write(tmp_path / name, kit.jpeg_with_app15(kit.astronaut_crop(32), data)))
             for name, data in payloads.items()]
    results = _read_in_fresh_process(paths)
    for path in paths:
        outcome, growth_mb = results[path]
        if path.endswith("memo_index.jpg"):
            assert outcome == "{}"  # harmless data, loaded
        else:
            assert outcome.startswith(f"{path}: {REFUSED}: ")
            if path.endswith("object_build.jpg"):
                assert outcome.endswith("it uses the numpy dtype |O, which is not a dtype of plain numbers")
        assert growth_mb < 64, (path, outcome, growth_mb)


def _jpeg_with_segments(kit, payload: bytes) -> bytes:
    """A JPEG whose APP15 metadata is split over as many segments as it takes (each holds at most 65533 bytes)."""
    jpeg = kit.jpeg_with_app15(kit.astronaut_crop(32), None)
    segments = b"".join(
        b"\xff\xef" + struct.pack(">H", len(chunk) + 2) + chunk
        for chunk in (payload[i : i + 65533] for i in range(0, len(payload), 65533))
    )
    return jpeg[:2] + segments + jpeg[2:]


def test_oversize_metadata_is_refused_by_its_size(tmp_path, kit):
    payload = pickle.dumps({"face_type": "whole_face", "pad": b"x" * MAX_METADATA_BYTES}, protocol=3)
    path = _write(tmp_path / "big_0.jpg", _jpeg_with_segments(kit, payload))
    with pytest.raises(DflError, match=rf"^{re.escape(str(path))}: {REFUSED}: it is {len(payload)} bytes, more than "
                                       rf"the {MAX_METADATA_BYTES}-byte cap \(DeepFaceLab writes at most 65533\)"):
        read_dfl_metadata(path)
    # under the cap, metadata split over segments still loads
    payload = pickle.dumps({"face_type": "whole_face", "pad": b"x" * 200_000}, protocol=3)
    back = read_dfl_metadata(_write(tmp_path / "split_0.jpg", _jpeg_with_segments(kit, payload)))
    assert back["pad"] == b"x" * 200_000


def test_deeply_nested_tuples_are_refused(tmp_path, kit):
    """Hashing a tuple nested 500,000 deep (here a dict key) overflows the C stack: refused as it is built."""
    deep = str(_write(tmp_path / "deep_0.jpg", _jpeg_with_segments(kit, b"\x80\x04}N" + b"\x85" * 500_000 + b"Ns.")))
    shallow = str(_write(tmp_path / "ok_0.jpg", _jpeg_with_segments(kit, b"\x80\x04}N" + b"\x85" * 20 + b"Ns.")))
    results = _read_in_fresh_process([deep, shallow])
    nested = f"its tuples nest more than {MAX_TUPLE_NESTING} deep, which is not plain data"
    assert results[deep][0] == f"{deep}: {REFUSED}: {nested}"
    assert results[shallow][0] == "{" + "(" * 20 + "None," + ")," * 19 + "): None}"


def test_dtype_states_other_than_plain_numbers_are_refused(tmp_path, kit):
    """A dtype's BUILD can give it fields at any offset; numpy then reads outside the array (a segfault)."""
    dtype = _Calls(np.dtype, "V8", False, True, state=(3, "|", None, ("a",), {"a": (np.dtype("<f8"), 2**26)}, 8, 1, 16))
    payload = _payload(_Calls(_reconstruct, np.ndarray, (0,), b"b", state=(1, (1,), dtype, False, b"\0" * 8)))
    path = _write(tmp_path / "fields_0.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), payload))
    with pytest.raises(DflError, match=rf"{REFUSED}: a numpy dtype's state is not that of plain numbers"):
        read_dfl_metadata(path)


def test_a_dtype_in_use_cannot_be_given_a_new_state(tmp_path, kit):
    """A second BUILD of a dtype an array already holds would make the array's items 1 MiB wide (reads past it)."""
    plain_state = b"(K\x03X\x01\x00\x00\x00|NNNK\x01K\x01K\x00tb"
    payload = (
        b"\x80\x03cnumpy\ndtype\nX\x02\x00\x00\x00V1\x89\x88\x87Rq\x00" + plain_state + b"0"  # memo 0: dtype V1
        b"cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
        b"(K\x01K\x01\x85h\x00\x89C\x01xtbq\x010"  # memo 1: a one-byte array of that dtype
        b"h\x00(K\x03X\x01\x00\x00\x00|NNNJ\x00\x00\x10\x00K\x01K\x00tb0"  # the dtype made 1 MiB wide
        b"}X\x01\x00\x00\x00ah\x01s."
    )
    path = _write(tmp_path / "rebuilt_0.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), payload))
    with pytest.raises(DflError, match=rf"{REFUSED}: it sets the state of a numpy dtype already in use"):
        read_dfl_metadata(path)
    without_rebuild = payload.replace(b"h\x00(K\x03X\x01\x00\x00\x00|NNNJ\x00\x00\x10\x00K\x01K\x00tb0", b"")
    assert len(without_rebuild) < len(payload)
    path = _write(tmp_path / "ok_0.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), without_rebuild))
    back = read_dfl_metadata(path)
    assert back["a"].dtype == np.dtype("V1") and back["a"].tobytes() == b"x"


def test_plain_dfl_values_of_every_kind_still_load(tmp_path, kit):
    """What DeepFaceLab writes: arrays of its dtypes (an XSeg mask as uint8 PNG bytes), numpy scalars, bytes,
    tuples, sets and bytearrays, under pickle protocols 3 to 5."""
    meta = {
        "face_type": "whole_face", "xseg_mask": np.frombuffer(b"\x89PNG" + bytes(100), np.uint8),
        "source_rect": (np.int64(3), np.int32(4), np.float32(5.5), 6), "flags": np.array([True, False]),
        "half": np.ones((2, 2), np.float16), "big_endian": np.arange(3, dtype=">i4"), "raw": b"\x00\xff",
        "buffer": bytearray(b"ab"), "ids": frozenset({(1, 2)}), "fortran": np.asfortranarray(np.eye(3)),
    }
    for protocol in (3, 4, 5):
        path = _write(tmp_path / f"p{protocol}.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32),
                                                                          pickle.dumps(meta, protocol=protocol)))
        back = read_dfl_metadata(path)
        assert back.keys() == meta.keys()
        for key, value in meta.items():
            if isinstance(value, np.ndarray):
                # protocols 3 and 4 load a big-endian array in native order, protocol 5 as it was
                assert back[key].dtype in (value.dtype, value.dtype.newbyteorder("="))
                assert back[key].flags.f_contiguous == value.flags.f_contiguous
                np.testing.assert_array_equal(back[key], value)
            else:
                assert back[key] == value and type(back[key]) is type(value)
        assert [type(v) for v in back["source_rect"]] == [np.int64, np.int32, np.float32, int]


def test_import_dfl_faceset(tmp_path, kit, real_faces):
    src = tmp_path / "aligned"
    src.mkdir()
    astro, hopper = real_faces["astronaut"], real_faces["hopper"]
    sentinel = tmp_path / "pwned"
    files = {
        "00001_0.jpg": kit.jpeg_with_app15(astro.aligned, kit.dfl_pickle(kit.dfl_metadata(astro))),
        "00002_0.jpg": kit.jpeg_with_app15(
            hopper.aligned, kit.dfl_pickle(kit.dfl_metadata(hopper, source_filename="00002.png"))
        ),
        "00003_0.jpg": kit.jpeg_with_app15(
            hopper.aligned, kit.dfl_pickle(kit.dfl_metadata(hopper, "full_face", "00003.png"))
        ),
        "00004_0.jpg": kit.jpeg_with_app15(astro.aligned, None),
        "00005_0.jpg": kit.jpeg_with_app15(
            astro.aligned, pickle.dumps({"face_type": "whole_face", "x": _RunsShellCommand(f"touch {sentinel}")})
        ),
    }
    for name, data in files.items():
        _write(src / name, data)

    report = import_dfl_faceset(src, tmp_path / "faceset")

    faceset = Faceset.open(tmp_path / "faceset")
    assert (faceset.info.face_type, faceset.info.size, faceset.info.encoding) == ("whole_face", kit.SIZE, "png16")
    assert report.imported == [faceset.root / "00001_0.png", faceset.root / "00002_0.png"]
    skipped = dict(report.skipped)
    assert skipped.keys() == {"00003_0.jpg", "00004_0.jpg", "00005_0.jpg"}
    assert skipped["00003_0.jpg"] == "face type full_face, the faceset is whole_face"
    assert "no DeepFaceLab metadata" in skipped["00004_0.jpg"]
    refused = r"00005_0.jpg: refused to load DeepFaceLab metadata: it references (posix|os)\.system"
    assert re.search(refused, skipped["00005_0.jpg"])
    assert not sentinel.exists()

    record = faceset.records()[0]
    meta = record.meta
    assert (meta.source_filename, meta.source_frame, meta.face_index) == ("00001.png", 1, 0)
    assert meta.plate_colorspace == "sRGB Encoded Rec.709 (sRGB)" and meta.colorspace == "ACEScct"
    np.testing.assert_allclose(meta.landmarks_array(), astro.landmarks, atol=1e-4)  # stored as float32 by DFL
    np.testing.assert_allclose(meta.source_landmarks_array(), astro.source_landmarks, atol=1e-4)
    np.testing.assert_allclose(meta.matrix(), astro.mat, rtol=1e-6, atol=1e-4)
    assert meta.source_rect == [float(v) for v in np.array(astro.source_rect, dtype=np.int32)]
    expected_pose = estimate_pitch_yaw_roll(meta.landmarks_array(), kit.SIZE)
    assert [meta.pose[k] for k in ("pitch", "yaw", "roll")] == pytest.approx(expected_pose, abs=1e-9)
    assert meta.extra["seg_ie_polys"] == [{"type": 1, "pts": [[10.0, 10.0], [100.0, 12.0], [50.0, 90.0]]}]

    # pixels: the JPEG's sRGB values converted to ACEScct; back to sRGB they match the decoded JPEG
    decoded = cv2.cvtColor(cv2.imread(str(src / "00001_0.jpg")), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    working = faceset.read(record)
    assert 0.05 < working.mean() < 0.6  # log-encoded, not the sRGB values themselves
    np.testing.assert_allclose(kit.working_to_srgb(working), decoded, atol=2e-4)


def test_import_resizes_faces_and_scales_geometry(tmp_path, kit, real_faces):
    src = tmp_path / "aligned"
    src.mkdir()
    astro = real_faces["astronaut"]
    _write(src / "00001_0.jpg", kit.jpeg_with_app15(astro.aligned, kit.dfl_pickle(kit.dfl_metadata(astro))))
    report = import_dfl_faceset(src, tmp_path / "faceset", size=64)
    assert report.skipped == []
    faceset = Faceset.open(tmp_path / "faceset")
    [record] = faceset.records()
    meta = record.meta
    assert faceset.info.size == 64 and meta.size == 64
    # the scaled matrix still takes the frame landmarks onto the scaled aligned landmarks
    mapped = transform_points(meta.source_landmarks_array(), meta.matrix())
    np.testing.assert_allclose(mapped, meta.landmarks, atol=1e-3)
    scale = 64 / kit.SIZE
    np.testing.assert_allclose(meta.landmarks_array(), (astro.landmarks + 0.5) * scale - 0.5, atol=1e-4)
    np.testing.assert_allclose(meta.extra["seg_ie_polys"][0]["pts"][0], [(10.5) * scale - 0.5] * 2)
    # the resized face is the frame warped with the scaled matrix (up to JPEG and resampling differences)
    rewarped = cv2.warpAffine(astro.frame_rgb.astype(np.float32) / 255, meta.matrix(), (64, 64), flags=cv2.INTER_AREA)
    srgb = kit.working_to_srgb(faceset.read(record))
    assert np.abs(srgb - rewarped).mean() < 0.02
    assert math.isfinite(meta.pose["yaw"])


def test_import_needs_a_directory(tmp_path):
    with pytest.raises(DflError, match="not a directory of DeepFaceLab aligned faces"):
        import_dfl_faceset(tmp_path / "missing", tmp_path / "out")


def test_import_with_nothing_importable_creates_no_faceset(tmp_path, kit):
    src = tmp_path / "aligned"
    src.mkdir()
    _write(src / "a.jpg", kit.jpeg_with_app15(kit.astronaut_crop(32), None))
    report = import_dfl_faceset(src, tmp_path / "out")
    assert report.imported == [] and [name for name, _ in report.skipped] == ["a.jpg"]
    assert not (tmp_path / "out").exists()


def test_renamed_dfl_files_get_the_next_free_face_index(tmp_path, kit, real_faces):
    """DFL's own sort renames aligned files (00000.jpg, ...): the index comes from what is free."""
    src = tmp_path / "aligned"
    src.mkdir()
    astro = real_faces["astronaut"]
    payload = kit.dfl_pickle(kit.dfl_metadata(astro, source_filename="plate_0042.png"))
    for name in ("00000.jpg", "00001.jpg"):
        _write(src / name, kit.jpeg_with_app15(astro.aligned, payload))
    report = import_dfl_faceset(src, tmp_path / "faceset")
    assert [p.name for p in report.imported] == ["plate_0042_0.png", "plate_0042_1.png"]
    records = Faceset.open(tmp_path / "faceset").records()
    assert [(r.meta.source_frame, r.meta.face_index) for r in records] == [(42, 0), (42, 1)]
    assert [r.meta.extra["dfl_aligned_file"] for r in records] == ["00000.jpg", "00001.jpg"]
