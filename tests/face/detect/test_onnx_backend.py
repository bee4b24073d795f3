"""ONNX backend against tiny graphs built here with onnx.helper: boxes, NMS, padding, crops, both outputs."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dfl_vfx.errors import DflError
from dfl_vfx.face.detect import OnnxBackend, find_faces
from dfl_vfx.face.detect.base import detect_candidates
from dfl_vfx.face.detect.onnx_backend import crop_transform, decode_heatmaps, nms

CROP = 64
# Detector rows [x1, y1, x2, y2, score] in input pixels.
BOX_A = [20.0, 30.0, 80.0, 100.0, 0.9]
BOX_A_OVERLAP = [22.0, 32.0, 82.0, 98.0, 0.8]  # IoU with A ~0.89: suppressed
BOX_C = [120.0, 40.0, 170.0, 100.0, 0.7]  # smaller than A: second
BOX_LOW = [100.0, 110.0, 150.0, 150.0, 0.3]  # below score_threshold 0.5: dropped
BOX_TINY = [5.0, 120.0, 25.0, 140.0, 0.95]  # 20 px: dropped by min_face 40


def save_model(path: Path, nodes, inputs, outputs, initializers=()) -> str:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return str(path)


def image_input(size=None):
    shape = [1, 3, size, size] if size else [1, 3, "H", "W"]
    return helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)


def constant_model(path: Path, values: np.ndarray, crop: int | None = None, extra_first_output=False) -> str:
    """Outputs `values` (+ 0 * max pixel, so the graph consumes its input)."""
    nodes = [
        helper.make_node("ReduceMax", ["image"], ["peak"], keepdims=0),
        helper.make_node("Mul", ["peak", "zero"], ["nothing"]),
        helper.make_node("Add", ["values", "nothing"], ["out"]),
    ]
    inits = [numpy_helper.from_array(values.astype(np.float32), "values"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(values.shape))]
    if extra_first_output:  # like a stacked-hourglass model: earlier stacks first, the final one last
        nodes.append(helper.make_node("Mul", ["out", "zero"], ["stack0"]))
        outputs.insert(0, helper.make_tensor_value_info("stack0", TensorProto.FLOAT, list(values.shape)))
    return save_model(path, nodes, [image_input(crop)], outputs, inits)


def input_shape_detector(path: Path) -> str:
    """One box [0, 0, W, H, 1] where W, H are the padded input's size."""
    nodes = [
        helper.make_node("Shape", ["image"], ["shape"]),
        helper.make_node("Gather", ["shape", "wh_index"], ["wh_int"]),
        helper.make_node("Cast", ["wh_int"], ["wh"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["origin", "wh", "one"], ["row"], axis=0),
        helper.make_node("Reshape", ["row", "row_shape"], ["out"]),
    ]
    inits = [numpy_helper.from_array(np.array([3, 2], np.int64), "wh_index"),
             numpy_helper.from_array(np.zeros(2, np.float32), "origin"),
             numpy_helper.from_array(np.ones(1, np.float32), "one"),
             numpy_helper.from_array(np.array([1, 5], np.int64), "row_shape")]
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5])]
    return save_model(path, nodes, [image_input()], outputs, inits)


def brightness_detector(path: Path) -> str:
    """One box [10, 10, 60, 60] scored by the brightest input value (shows the input scale)."""
    nodes = [
        helper.make_node("ReduceMax", ["image"], ["peak"], keepdims=0),
        helper.make_node("Reshape", ["peak", "one_shape"], ["score"]),
        helper.make_node("Concat", ["box", "score"], ["row"], axis=0),
        helper.make_node("Reshape", ["row", "row_shape"], ["out"]),
    ]
    inits = [numpy_helper.from_array(np.array([10, 10, 60, 60], np.float32), "box"),
             numpy_helper.from_array(np.array([1], np.int64), "one_shape"),
             numpy_helper.from_array(np.array([1, 1, 5], np.int64), "row_shape")]
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 5])]
    return save_model(path, nodes, [image_input()], outputs, inits)


def passthrough_landmarker(path: Path) -> str:
    """Heatmaps = the crop's red channel, for all 68 points: landmarks land on the brightest image spot."""
    nodes = [
        helper.make_node("Slice", ["image", "starts", "ends", "axes"], ["red"]),
        helper.make_node("Expand", ["red", "heatmap_shape"], ["out"]),
    ]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "starts"),
             numpy_helper.from_array(np.array([1], np.int64), "ends"),
             numpy_helper.from_array(np.array([1], np.int64), "axes"),
             numpy_helper.from_array(np.array([1, 68, CROP, CROP], np.int64), "heatmap_shape")]
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 68, CROP, CROP])]
    return save_model(path, nodes, [image_input(CROP)], outputs, inits)


CROP_POINTS = np.stack([np.linspace(0, CROP - 1, 68), np.linspace(CROP - 1, 0, 68)], axis=1)


def heatmaps_with_known_peaks() -> tuple[np.ndarray, np.ndarray]:
    """(1, 68, 16, 16) heatmaps and the refined peak of each in heatmap pixels."""
    maps = np.zeros((68, 16, 16), np.float32)
    peaks = np.zeros((68, 2))
    for k in range(68):
        col, row = 1 + k % 14, 1 + (k * 5) % 14
        maps[k, row, col] = 1.0
        maps[k, row, col + 1], maps[k, row, col - 1] = 0.5, 0.2  # right neighbour higher: x + 0.25
        maps[k, row - 1, col], maps[k, row + 1, col] = 0.6, 0.1  # upper neighbour higher: y - 0.25
        peaks[k] = (col + 0.25, row - 0.25)
    return maps[None], peaks


def crop_to_image(points: np.ndarray, rect, crop_size: int = CROP) -> np.ndarray:
    """Crop pixel centres -> image pixels for the 2DFAN crop: side 200/195 * (w + h) around the rect centre."""
    centre = np.array([(rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2])
    side = 200 / 195 * ((rect[2] - rect[0]) + (rect[3] - rect[1]))
    return centre - side / 2 + (points + 0.5) * side / crop_size


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("onnx_models")
    heatmaps, _ = heatmaps_with_known_peaks()
    boxes = np.array([[BOX_LOW, BOX_A_OVERLAP, BOX_C, BOX_A, BOX_TINY]])
    return {
        "detector": constant_model(folder / "detector.onnx", boxes),
        "flat_detector": constant_model(folder / "flat_detector.onnx", boxes[0]),
        "shape_detector": input_shape_detector(folder / "shape_detector.onnx"),
        "bright_detector": brightness_detector(folder / "bright_detector.onnx"),
        "coords": constant_model(folder / "coords.onnx", CROP_POINTS[None], crop=CROP),
        "heatmaps": constant_model(folder / "heatmaps.onnx", heatmaps, crop=CROP, extra_first_output=True),
        "passthrough": passthrough_landmarker(folder / "passthrough.onnx"),
        "ten_points": constant_model(folder / "ten_points.onnx", CROP_POINTS[None, :10], crop=CROP),
    }


def test_detections_thresholded_suppressed_and_sorted(models):
    backend = OnnxBackend(detector=models["detector"], landmarker=models["coords"])
    image = np.full((160, 200, 3), 90, np.uint8)
    faces = find_faces(image, backend, min_face=40)
    assert [face.rect for face in faces] == [tuple(BOX_A[:4]), tuple(BOX_C[:4])]
    assert [face.score for face in faces] == pytest.approx([0.9, 0.7])
    assert len(find_faces(image, backend, min_face=40, max_faces=1)) == 1
    flat = OnnxBackend(detector=models["flat_detector"], landmarker=models["coords"])
    assert [rect for rect, _ in flat.detect(image)] == [tuple(b[:4]) for b in (BOX_TINY, BOX_A, BOX_C)]


def test_coordinate_landmarks_map_back_to_image(models):
    backend = OnnxBackend(detector=models["detector"], landmarker=models["coords"])
    image = np.full((160, 200, 3), 90, np.uint8)
    face = find_faces(image, backend, min_face=40)[0]
    expected = crop_to_image(CROP_POINTS, BOX_A)
    assert np.abs(face.landmarks - expected).max() < 0.5
    # Hand check: rect (20, 30, 80, 100) has centre (50, 65) and crop side 130 * 200/195 = 133.33 px, so
    # crop = image * 0.48 + (7.5, 0.3): the rect centre lands on the crop centre (31.5, 31.5).
    assert crop_transform(tuple(BOX_A[:4]), CROP, 200 / 195) == pytest.approx((0.48, 7.5, 0.3))
    assert face.landmarks[0] == pytest.approx(((0 - 7.5) / 0.48, (63 - 0.3) / 0.48))
    assert np.array_equal(backend.landmarks(image, tuple(BOX_A[:4])), face.landmarks)


def test_downscaled_detection_maps_rects_and_keeps_full_res_landmarks(models):
    backend = OnnxBackend(detector=models["detector"], landmarker=models["coords"])
    image = np.full((320, 400, 3), 90, np.uint8)  # detected at 200x160: boxes double (pixel centres)
    faces = find_faces(image, backend, detect_size=200, min_face=40)
    expected_a = tuple(np.array(BOX_A[:4]) * 2 + 0.5)
    assert faces[0].rect == pytest.approx(expected_a)
    assert faces[0].rect == pytest.approx((40.5, 60.5, 160.5, 200.5))
    assert np.abs(faces[0].landmarks - crop_to_image(CROP_POINTS, expected_a)).max() < 0.5
    # BOX_TINY becomes 40 px at full res and now passes min_face 40.
    assert len(faces) == 3
    # The same mapping without landmarks, for callers that fit landmarks on their own crops.
    candidates = detect_candidates(image[::2, ::2], (320, 400), backend, min_face=41)
    assert [rect for rect, _ in candidates] == [faces[0].rect, faces[1].rect]


def test_heatmap_landmarks_refine_toward_higher_neighbour(models):
    backend = OnnxBackend(detector=models["detector"], landmarker=models["heatmaps"])
    heatmaps, peaks = heatmaps_with_known_peaks()
    assert np.array_equal(decode_heatmaps(heatmaps[0]), peaks)
    rect = (20.0, 30.0, 80.0, 100.0)
    points = backend.landmarks(np.zeros((160, 200, 3), np.uint8), rect)
    crop_points = (peaks + 0.5) * (CROP / 16) - 0.5  # 16x16 grid to 64x64 crop, pixel centres
    assert np.abs(points - crop_to_image(crop_points, rect)).max() < 0.5


@pytest.mark.parametrize(
    ("rect", "spot", "sigma"),
    [
        ((24.9, 9.9, 56.1, 41.1), (30, 25), 2.0),  # crop side 64: one crop pixel per image pixel
        ((51.8, 41.8, 114.2, 104.2), (60, 50), 4.0),  # crop side 128: sampled at 128 and box-filtered
    ],
)
def test_crop_samples_the_right_image_region(models, rect, spot, sigma):
    backend = OnnxBackend(detector=models["detector"], landmarker=models["passthrough"])
    y, x = np.mgrid[0:160, 0:200]
    blob = 255 * np.exp(-((x - spot[0]) ** 2 + (y - spot[1]) ** 2) / (2 * sigma**2))
    image = np.zeros((160, 200, 3), np.uint8)
    image[:, :, 0] = np.rint(blob).astype(np.uint8)  # red only: the crop must stay RGB
    points = backend.landmarks(image, rect)
    assert np.abs(points - np.array(spot)).max() < 0.3


def test_detector_input_is_padded_to_multiple_of_32(models):
    backend = OnnxBackend(detector=models["shape_detector"], landmarker=models["coords"])
    assert backend.detect(np.zeros((70, 100, 3), np.uint8)) == [((0.0, 0.0, 128.0, 96.0), 1.0)]


def test_input_scale_unit_and_byte(models):
    image = np.full((64, 64, 3), 100, np.uint8)
    unit = OnnxBackend(detector=models["bright_detector"], landmarker=models["coords"])
    byte = OnnxBackend(detector=models["bright_detector"], landmarker=models["coords"], input_scale="byte")
    assert unit.detect(image) == []  # 100/255 = 0.39 < 0.5
    assert byte.detect(image) == [((10.0, 10.0, 60.0, 60.0), 100.0)]
    low = OnnxBackend(detector=models["bright_detector"], landmarker=models["coords"], score_threshold="0.3")
    assert low.detect(image)[0][1] == pytest.approx(100 / 255)


def test_nms_keeps_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 5]], float)
    scores = np.array([0.6, 0.9, 0.8, 0.7])
    # IoU of box 1 with box 0 = 81/119 = 0.68, with box 3 = 36/114 = 0.32; IoU(box 0, box 3) = 0.5.
    assert nms(boxes, scores, 0.3) == [1, 2]
    assert nms(boxes, scores, 0.35) == [1, 2, 3]
    assert nms(boxes, scores, 0.7) == [1, 2, 3, 0]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.3) == []


def test_missing_or_invalid_models_raise_dfl_error(models, tmp_path):
    missing = str(tmp_path / "nope.onnx")
    with pytest.raises(DflError, match="nope.onnx"):
        OnnxBackend(detector=missing, landmarker=models["coords"])
    with pytest.raises(DflError, match="landmarker"):
        OnnxBackend(detector=models["detector"])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    backend = OnnxBackend(detector=str(garbage), landmarker=models["coords"])
    with pytest.raises(DflError, match="garbage.onnx"):
        backend.detect(np.zeros((32, 32, 3), np.uint8))


def test_wrong_model_shapes_raise_dfl_error(models):
    image = np.zeros((64, 64, 3), np.uint8)
    swapped = OnnxBackend(detector=models["coords"], landmarker=models["detector"])
    with pytest.raises(DflError, match=r"expected \(N, 5\)"):
        swapped.detect(image)
    with pytest.raises(DflError, match="static square input"):
        swapped.landmarks(image, (10, 10, 50, 50))
    ten_points = OnnxBackend(detector=models["detector"], landmarker=models["ten_points"])
    with pytest.raises(DflError, match="68"):
        ten_points.landmarks(image, (10, 10, 50, 50))
