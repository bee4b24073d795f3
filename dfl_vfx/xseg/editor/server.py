"""The label editor's local web server: the page, face images in a display encoding, labels in and out as JSON.

Bound to 127.0.0.1 only. Every URL starts with a random token (``http://127.0.0.1:PORT/TOKEN/``, printed at start),
so the page's relative URLs carry it and nothing else on the machine (another user, a web page in the browser)
can read faces or write labels; a request without it, or with another ``Host`` than 127.0.0.1/localhost, gets 403.

    GET  /TOKEN/                              the page (static/index.html, editor.js, editor.css)
    GET  /TOKEN/api/faces                     {"faceset", "size", "colorspace", "prediction": bool, "faces": [...]}
    GET  /TOKEN/api/faces/NAME                {"name", "size", "polygons": [{"type": 1|0, "pts": [[x, y], ...]}],
                                               "matte": bool}
    POST /TOKEN/api/faces/NAME                {"polygons": [...]} -> saved by write_polygons (400 + {"error"})
    GET  /TOKEN/api/faces/NAME/image.png      the face, 8-bit sRGB (converted from the faceset's working space)
    GET  /TOKEN/api/faces/NAME/prediction.png the model's mask (--model), else the applied mask, 8-bit grey; 404
    GET  /TOKEN/api/faces/NAME/matte.png      the imported matte label, 8-bit grey; 404 when there is none

Faces are read, never written, except by saving labels (metadata only, see :func:`write_polygons`).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlsplit

import cv2
import numpy as np

from dfl_vfx.color.ocio import SRGB_SPACE, ColorTransform
from dfl_vfx.errors import DflError
from dfl_vfx.faceset.faceset import FaceRecord, Faceset
from dfl_vfx.xseg.labels import (
    Polygon,
    matte_label_path,
    read_matte_label,
    read_polygons,
    write_polygons,
)

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
MAX_BODY_BYTES = 4 << 20
STATIC_FILES = {"": ("index.html", "text/html"), "index.html": ("index.html", "text/html"),
                "editor.js": ("editor.js", "text/javascript"), "editor.css": ("editor.css", "text/css")}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# (faceset, record, working-space RGB (S, S, 3)) -> float mask (S, S) in [0, 1]
Predictor = Callable[[Faceset, FaceRecord, np.ndarray], np.ndarray]


class NotFound(Exception):
    """A URL or face that does not exist (404)."""


def _png(array: np.ndarray) -> bytes:
    """PNG bytes of uint8 (H, W) grey or (H, W, 3) RGB."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise DflError("cannot encode a PNG for the editor")
    return data.tobytes()


def _grey8(mask: np.ndarray) -> np.ndarray:
    return (np.clip(np.nan_to_num(mask, nan=0.0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclass
class EditorSession:
    """What the server edits: the faceset, its faces (headers cached), and where predictions come from."""

    faceset: Faceset
    predictor: Predictor | None = None

    def __post_init__(self) -> None:
        self._records = {record.path.name: record for record in self.faceset.records()}
        if not self._records:
            raise DflError(f"{self.faceset.root}: the faceset has no faces to label; extract or import faces first")
        self._display = ColorTransform(self.faceset.info.colorspace, SRGB_SPACE)
        self._lock = threading.Lock()

    def record(self, name: str) -> FaceRecord:
        record = self._records.get(name)
        if record is None:
            raise NotFound(f"no face {name!r} in {self.faceset.root}")
        return record

    def has_prediction(self) -> bool:
        from dfl_vfx.xseg.apply import MASKS_DIR

        return self.predictor is not None or (self.faceset.root / MASKS_DIR).is_dir()

    def _face_entry(self, record: FaceRecord) -> dict:
        polygons = record.meta.extra.get("seg_ie_polys") or []
        return {"name": record.path.name, "frame": record.meta.source_frame, "polygons": len(polygons),
                "matte": matte_label_path(self.faceset, record).is_file()}

    def faces(self) -> dict:
        info = self.faceset.info
        return {"faceset": str(self.faceset.root), "size": info.size, "colorspace": info.colorspace,
                "prediction": self.has_prediction(),
                "faces": [self._face_entry(record) for record in self._records.values()]}

    def face(self, name: str) -> dict:
        record = self.record(name)
        polygons = read_polygons(record.meta, name)
        return {"name": name, "size": record.meta.size, "polygons": [p.to_dict() for p in polygons],
                "matte": matte_label_path(self.faceset, record).is_file()}

    def save(self, name: str, body: object) -> dict:
        record = self.record(name)
        if not isinstance(body, dict) or not isinstance(body.get("polygons"), list):
            raise DflError(f"{name}: the editor sent no polygon list; reload the page")
        polygons = [Polygon.from_dict(item, f"{name}: polygon {i + 1}") for i, item in enumerate(body["polygons"])]
        with self._lock:
            path = write_polygons(self.faceset, record, polygons)
            updated = self.faceset.record(path)
            if updated is None:
                raise DflError(f"{path}: the face cannot be read back after saving; check the disk")
            self._records[name] = updated
        return {"saved": name, "polygons": len(polygons)}

    def image_png(self, name: str) -> bytes:
        rgb = self.faceset.read(self.record(name))
        srgb = self._display(np.nan_to_num(rgb, nan=0.0, posinf=1.0, neginf=0.0))
        return _png((np.clip(srgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))

    def prediction_png(self, name: str) -> bytes:
        record = self.record(name)
        if self.predictor is not None:
            return _png(_grey8(self.predictor(self.faceset, record, self.faceset.read(record))))
        from dfl_vfx.xseg.apply import read_xseg_mask, xseg_mask_path

        applied = read_xseg_mask(self.faceset, record)
        if applied is None:
            raise NotFound(f"no prediction for {name}: no --model given and no applied mask "
                           f"{xseg_mask_path(self.faceset, record)}")
        return _png(_grey8(applied))

    def matte_png(self, name: str) -> bytes:
        path = matte_label_path(self.faceset, self.record(name))
        if not path.is_file():
            raise NotFound(f"no imported matte for {name}")
        return _png(_grey8(read_matte_label(path)))


def _static(name: str) -> bytes:
    return resources.files("dfl_vfx.xseg.editor").joinpath("static", name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: EditorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        log.debug("editor %s: " + format, self.client_address[0], *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in SECURITY_HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: object) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _route(self) -> list[str] | None:
        """The path segments after the token, or None (403 sent) when the token or host is wrong."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        parts = urlsplit(self.path).path.split("/")
        token = parts[1] if len(parts) > 1 else ""
        if host not in (LOCALHOST, "localhost") or not secrets.compare_digest(token, self.server.token):
            self._send(HTTPStatus.FORBIDDEN, b"forbidden: open the URL dfl-vfx xseg edit printed\n", "text/plain")
            return None
        return [unquote(part) for part in parts[2:]]

    def _handle(self, method: str) -> None:
        parts = self._route()
        if parts is None:
            return
        session = self.server.session
        try:
            if method == "GET" and len(parts) == 0:  # /TOKEN: the page's relative URLs need the slash
                self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                self.send_header("Location", f"/{self.server.token}/")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif method == "GET" and len(parts) == 1 and parts[0] in STATIC_FILES:
                file_name, content_type = STATIC_FILES[parts[0]]
                self._send(HTTPStatus.OK, _static(file_name), f"{content_type}; charset=utf-8")
            elif parts[:2] == ["api", "faces"] and len(parts) == 2 and method == "GET":
                self._json(HTTPStatus.OK, session.faces())
            elif parts[:2] == ["api", "faces"] and len(parts) == 3 and method == "GET":
                self._json(HTTPStatus.OK, session.face(parts[2]))
            elif parts[:2] == ["api", "faces"] and len(parts) == 3 and method == "POST":
                self._json(HTTPStatus.OK, session.save(parts[2], self._body()))
            elif parts[:2] == ["api", "faces"] and len(parts) == 4 and method == "GET":
                images = {"image.png": session.image_png, "prediction.png": session.prediction_png,
                          "matte.png": session.matte_png}
                if parts[3] not in images:
                    raise NotFound(f"no such view {parts[3]!r}")
                self._send(HTTPStatus.OK, images[parts[3]](parts[2]), "image/png")
            else:
                raise NotFound(f"no such page {'/'.join(parts)!r}")
        except NotFound as exc:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(exc)})
        except DflError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except Exception as exc:  # the page shows it; the server stays up for the next request
            log.exception("editor request %s %s failed", method, self.path)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})

    def _body(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY_BYTES:
            raise DflError(f"request body of {length} bytes refused (at most {MAX_BODY_BYTES}); reload the page")
        try:
            return json.loads(self.rfile.read(length))
        except ValueError:
            raise DflError("the editor sent a body that is not JSON; reload the page") from None

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._handle("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")


class EditorServer(ThreadingHTTPServer):
    """The editor on 127.0.0.1:``port`` (0: any free port); :attr:`url` holds the token. Use as a context manager
    or call :meth:`start` / :meth:`close`."""

    daemon_threads = True

    def __init__(self, session: EditorSession, port: int = 0) -> None:
        self.session = session
        self.token = secrets.token_urlsafe(32)
        try:
            super().__init__((LOCALHOST, port), _Handler)
        except OSError as exc:
            raise DflError(f"--port {port}: cannot listen on {LOCALHOST} ({exc.strerror}); choose another port "
                           "or 0 for any free one") from None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}/{self.token}/"

    def start(self) -> EditorServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="xseg-editor", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()

    def __enter__(self) -> EditorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_editor(faceset_dir: str | Path, model: str | Path | None = None, port: int = 0) -> EditorServer:
    """An (unstarted) editor server for a faceset; ``model`` is an XSeg model whose prediction the page overlays."""
    faceset = Faceset.open(faceset_dir)
    predictor = model_predictor(model) if model is not None else None
    return EditorServer(EditorSession(faceset, predictor), port)


def model_predictor(model: str | Path) -> Predictor:
    """The soft prediction of an XSeg model folder (:func:`dfl_vfx.xseg.apply.predict_masks`), loaded on first use:
    the page opens at once and the first overlay waits for the load. A model of another face type than the faceset
    is refused (the page shows the one line)."""
    from dfl_vfx.models.checkpoint import checkpoint_path

    if not checkpoint_path(model).is_file():
        raise DflError(f"--model {model}: no XSeg checkpoint ({checkpoint_path(model).name}) there; train one with "
                       "`dfl-vfx xseg train` or leave --model out")
    lock = threading.Lock()
    loaded: list = []

    def predict(faceset: Faceset, record: FaceRecord, rgb: np.ndarray) -> np.ndarray:
        from dfl_vfx.xseg.apply import check_face_type, predict_masks
        from dfl_vfx.xseg.model import load_xseg

        with lock:
            if not loaded:
                net = load_xseg(model)
                check_face_type(net, faceset.info.face_type, f"faceset {faceset.root}")
                loaded.append(net)
        net = loaded[0]
        res, size = net.resolution, rgb.shape[0]
        face = cv2.resize(rgb, (res, res), interpolation=cv2.INTER_AREA) if size != res else rgb
        with lock:  # one inference at a time: the page asks for a face's overlay as it steps
            mask = predict_masks(net.model, face[None])[0]
        return cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR) if size != res else mask

    return predict
