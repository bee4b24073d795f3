"""ONNX face backend: a studio's own S3FD-style detector and 2DFAN-style landmarker run with onnxruntime.

Model contract (anything else, e.g. mean subtraction or BGR order, must be baked into the graph):

Detector
    input   float32 NCHW RGB (1, 3, H, W) with dynamic H, W. Pixels are in [0, 1] (`input_scale=unit`) or
            0..255 (`input_scale=byte`). The backend pads the image with black at the bottom/right up to a
            multiple of 32, so coordinates are unchanged.
    output  the first output, (N, 5) or (1, N, 5): rows [x1, y1, x2, y2, score] in input pixels (pixel-centre
            convention, like every rect in dfl_vfx). Rows scoring below `score_threshold` are dropped, then
            non-maximum suppression at IoU `nms_threshold` keeps the best of overlapping boxes. Boxes are not
            clipped to the image: a face cut by the frame edge keeps its full extent.

Landmarker
    input   float32 NCHW RGB (1, 3, S, S), S static and read from the model. The crop is centred on the rect
            centre with side `crop_factor * (w + h)` image pixels; the default 200/195 is 2DFAN's scale
            (w + h) / 195 applied to its 200-px reference box. Image pixels outside the frame read black.
            When the crop shrinks the face by 2x or more it is first sampled at an integer multiple of S and
            box-filtered down (no aliasing).
    output  the last output, either coordinates (1, 68, 2) (extra columns such as z are ignored) in crop
            pixels, or heatmaps (1, 68, h, w). Heatmaps decode by argmax, moved a quarter pixel toward the
            higher of each axis's two neighbours, and scaled from the h x w grid to the S x S crop
            (pixel centres to pixel centres). Points are then mapped back to image pixels.

Sessions are created on first use with the providers named by `providers` (CPU by default).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.face.detect.base import BackendOption, FaceBackend, Rect, as_rgb_uint8

PAD_MULTIPLE = 32
FAN_CROP_FACTOR = 200.0 / 195.0
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices of boxes kept by greedy non-maximum suppression, best score first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    order = list(np.argsort(-np.asarray(scores), kind="stable"))
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        if not order:
            break
        rest = np.array(order)
        width = np.clip(
            np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0]), 0, None
        )
        height = np.clip(
            np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1]), 0, None
        )
        overlap = width * height
        union = areas[best] + areas[rest] - overlap
        iou = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
        order = [int(i) for i, value in zip(rest, iou, strict=True) if value <= iou_threshold]
    return keep


def crop_transform(rect: Rect, crop_size: int, crop_factor: float) -> tuple[float, float, float]:
    """(scale, offset_x, offset_y) with crop = image * scale + offset (pixel-centre convention)."""
    centre_x = (rect[0] + rect[2]) / 2.0
    centre_y = (rect[1] + rect[3]) / 2.0
    side = crop_factor * ((rect[2] - rect[0]) + (rect[3] - rect[1]))
    if side <= 0:
        raise DflError(f"onnx backend: cannot crop landmarks from an empty rect {rect}")
    scale = crop_size / side
    return scale, (side / 2.0 - centre_x) * scale - 0.5, (side / 2.0 - centre_y) * scale - 0.5


def decode_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    """(68, h, w) heatmaps -> (68, 2) peak positions in heatmap pixels, quarter-pixel refined."""
    count, height, width = heatmaps.shape
    flat = heatmaps.reshape(count, -1).argmax(axis=1)
    rows, cols = np.divmod(flat, width)
    points = np.stack([cols, rows], axis=1).astype(np.float64)
    for index, (row, col) in enumerate(zip(rows, cols, strict=True)):
        plane = heatmaps[index]
        if 0 < col < width - 1:
            points[index, 0] += 0.25 * np.sign(plane[row, col + 1] - plane[row, col - 1])
        if 0 < row < height - 1:
            points[index, 1] += 0.25 * np.sign(plane[row + 1, col] - plane[row - 1, col])
    return points


class OnnxBackend(FaceBackend):
    """A studio's own ONNX detector + 68-point landmarker (see the module docstring for the contract)."""

    name: ClassVar[str] = "onnx"
    description: ClassVar[str] = "your own S3FD-style detector + 2DFAN-style landmarker as .onnx files"
    options: ClassVar[dict[str, BackendOption]] = {
        "detector": BackendOption("", "path to the detector .onnx (NCHW RGB in, [x1,y1,x2,y2,score] rows out)"),
        "landmarker": BackendOption("", "path to the landmarker .onnx (square crop in, 68 points or heatmaps out)"),
        "score_threshold": BackendOption(0.5, "drop detections scoring below this"),
        "nms_threshold": BackendOption(0.3, "IoU above which the weaker of two boxes is suppressed"),
        "input_scale": BackendOption("unit", "pixel range fed to both models: unit = 0..1, byte = 0..255",
                                     ("unit", "byte")),
        "crop_factor": BackendOption(FAN_CROP_FACTOR, "landmark crop side = crop_factor * (w + h) of the rect"),
        "threads": BackendOption(0, "onnxruntime intra-op threads (0 = onnxruntime's default)"),
        "smallest_face": BackendOption(32.0, "smallest face, in detector input pixels, the model finds reliably "
                                       "(--detect-size auto scales the detection copy by it)"),
        "providers": BackendOption("cpu", "execution providers", tuple(PROVIDERS)),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for key in ("detector", "landmarker"):
            if not self.config[key]:
                raise DflError(f"onnx backend: option '{key}' is required (path to a .onnx file)")
            if not Path(self.config[key]).is_file():
                raise DflError(f"onnx backend: {key} model not found: {self.config[key]}")
        if self.config["threads"] < 0:
            raise DflError(f"onnx backend: option 'threads' must be 0 or more, got {self.config['threads']}")
        if self.config["crop_factor"] <= 0:
            raise DflError(f"onnx backend: option 'crop_factor' must be positive, got {self.config['crop_factor']}")
        if self.config["smallest_face"] <= 0:
            raise DflError(
                f"onnx backend: option 'smallest_face' must be positive, got {self.config['smallest_face']}"
            )
        self._sessions: dict = {}
        self._sessions_lock = threading.Lock()  # sessions are made once; InferenceSession.run is thread-safe

    def min_detectable(self) -> float:
        return float(self.config["smallest_face"])

    def _session(self, key: str):
        with self._sessions_lock:
            return self._load_session(key)

    def _load_session(self, key: str):
        if key not in self._sessions:
            import onnxruntime as ort

            wanted = PROVIDERS[self.config["providers"]]
            if wanted[0] not in ort.get_available_providers():
                raise DflError(
                    f"onnx backend: providers={self.config['providers']} needs {wanted[0]}, which this "
                    f"onnxruntime lacks (available: {', '.join(ort.get_available_providers())})"
                )
            session_options = ort.SessionOptions()
            session_options.intra_op_num_threads = self.config["threads"]
            path = self.config[key]
            try:
                self._sessions[key] = ort.InferenceSession(path, session_options, providers=wanted)
            except Exception as error:  # onnxruntime raises its own exception types for unreadable models
                first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise DflError(f"onnx backend: cannot load {key} model {path}: {first_line}") from None
        return self._sessions[key]

    def _to_input(self, image: np.ndarray) -> np.ndarray:
        tensor = image.astype(np.float32).transpose(2, 0, 1)[None]
        if self.config["input_scale"] == "unit":
            tensor /= 255.0
        return np.ascontiguousarray(tensor)

    def detect(self, image: np.ndarray) -> list[tuple[Rect, float]]:
        image = as_rgb_uint8(image)
        height, width = image.shape[:2]
        padded_height = -(-height // PAD_MULTIPLE) * PAD_MULTIPLE
        padded_width = -(-width // PAD_MULTIPLE) * PAD_MULTIPLE
        padded = np.zeros((padded_height, padded_width, 3), dtype=np.uint8)
        padded[:height, :width] = image
        session = self._session("detector")
        output = session.run(None, {session.get_inputs()[0].name: self._to_input(padded)})[0]
        rows = np.asarray(output, dtype=np.float64)
        if rows.ndim == 3 and rows.shape[0] == 1:
            rows = rows[0]
        if rows.ndim != 2 or rows.shape[1] != 5:
            raise DflError(
                f"onnx backend: detector {self.config['detector']} returned shape {output.shape}, "
                "expected (N, 5) or (1, N, 5) rows [x1, y1, x2, y2, score]"
            )
        rows = rows[rows[:, 4] >= self.config["score_threshold"]]
        keep = nms(rows[:, :4], rows[:, 4], self.config["nms_threshold"])
        return [(tuple(float(v) for v in rows[i, :4]), float(rows[i, 4])) for i in keep]

    def landmarks(self, image: np.ndarray, rect: Rect) -> np.ndarray:
        image = as_rgb_uint8(image)
        session = self._session("landmarker")
        model_input = session.get_inputs()[0]
        crop_size = model_input.shape[-1]
        if not isinstance(crop_size, int) or model_input.shape[-2] != crop_size:
            raise DflError(
                f"onnx backend: landmarker {self.config['landmarker']} needs a static square input, "
                f"got shape {model_input.shape}"
            )
        scale, offset_x, offset_y = crop_transform(rect, crop_size, self.config["crop_factor"])
        crop = _sample_crop(image, crop_size, scale, offset_x, offset_y)
        output = np.asarray(session.run(None, {model_input.name: self._to_input(crop)})[-1], dtype=np.float64)
        output = output[0] if output.shape[0] == 1 else output
        if output.ndim == 2 and output.shape[0] == 68 and output.shape[1] >= 2:
            points = output[:, :2]
        elif output.ndim == 3 and output.shape[0] == 68:
            grid = decode_heatmaps(output)
            points = (grid + 0.5) * np.array([crop_size / output.shape[2], crop_size / output.shape[1]]) - 0.5
        else:
            raise DflError(
                f"onnx backend: landmarker {self.config['landmarker']} returned shape {output.shape}, "
                "expected (1, 68, 2) coordinates or (1, 68, h, w) heatmaps"
            )
        return (points - np.array([offset_x, offset_y])) / scale


def _sample_crop(image: np.ndarray, size: int, scale: float, offset_x: float, offset_y: float) -> np.ndarray:
    """The size x size crop with crop = image * scale + offset, box-filtered when it shrinks by 2x or more."""
    factor = max(1, int(1.0 / scale))
    big = size * factor
    # Sampling at factor * size then averaging factor x factor blocks keeps the pixel-centre mapping.
    big_scale = scale * factor
    big_offset_x = (offset_x + 0.5) * factor - 0.5
    big_offset_y = (offset_y + 0.5) * factor - 0.5
    matrix = np.array([[big_scale, 0.0, big_offset_x], [0.0, big_scale, big_offset_y]])
    crop = cv2.warpAffine(
        image, matrix, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    if factor > 1:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return crop
