"""`dfl-vfx serve`: a persistent worker that keeps models loaded and swaps single frames on request.

Host front ends (Nuke, Blender) run it in the engine's own environment and talk JSON lines, over stdin/stdout or a
TCP socket bound to 127.0.0.1 only. One request per line, one response per line, matched by ``id``:

    -> {"id": 1, "method": "swap", "params": {"plate": "/p/shot.####.exr", "frame": 1001, "model": "/m/a.onnx",
                                                "out": "/tmp/f.1001.exr", "settings": {"erode": 10}}}
    <- {"id": 1, "ok": true, "result": {"out": "/tmp/f.1001.exr", "faces": 1, "seconds": 0.41, ...}}
    <- {"id": 2, "ok": false, "error": "one line saying what is wrong and what to do"}

Methods: ``ping``, ``load`` (warm a model), ``swap``, ``models`` (loaded ones), ``shutdown``. ``swap`` params:
``plate`` (sequence spec or file), ``frame``, ``model``, ``out`` (default: ``<cache>/<plate name>`` for the frame),
optional ``faceset``, ``settings`` (merge settings by name, see :class:`MergeSettings`), ``layers``, ``backend``,
``device``, ``face_type``, ``colorspace``, ``compression``.
"""

from __future__ import annotations

import dataclasses
import json
import socketserver
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import dfl_vfx
from dfl_vfx.errors import DflError
from dfl_vfx.io.sequence import open_sequence
from dfl_vfx.merge.merger import DEFAULT_LAYERS, MergeSettings
from dfl_vfx.swap.engine import SwapEngine, SwapSettings, check_output_format
from dfl_vfx.swap.faces import FaceFinder, faceset_plans
from dfl_vfx.swap.frame import swap_frame

LOCALHOST = "127.0.0.1"
_MERGE_FIELDS = {f.name for f in dataclasses.fields(MergeSettings)}


class SwapService:
    """Request handling with loaded runtimes and engines cached across requests (thread-safe).

    Each TCP connection runs on its own thread. Engines, runtimes and the :class:`FaceFinder` are shared: engine
    calls are thread-safe, and the finder lets one thread at a time into the (non thread-safe) dlib detector.
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "dfl_vfx_serve"
        self._runtimes: dict[tuple, Any] = {}
        self._engines: dict[str, SwapEngine] = {}
        self._face_finder: FaceFinder | None = None
        self._lock = threading.Lock()
        self.running = True

    def _finder(self) -> FaceFinder:
        """The face finder, made on first use (thread-safe: see :mod:`dfl_vfx.swap.faces`)."""
        with self._lock:
            if self._face_finder is None:
                self._face_finder = FaceFinder()
            return self._face_finder

    # -- requests -----------------------------------------------------------------------------------------------

    def handle_line(self, line: str) -> dict[str, Any]:
        """One JSON request line -> one response dict (errors become ``ok: false`` with a one-line message)."""
        request_id = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise DflError("a request must be a JSON object with id, method and params")
            request_id = request.get("id")
            method = request.get("method")
            params = request.get("params") or {}
            if not isinstance(params, dict):
                raise DflError("params must be a JSON object, e.g. {\"plate\": ..., \"frame\": 1001}")
            handler = {"ping": self.ping, "load": self.load, "swap": self.swap, "models": self.models,
                       "shutdown": self.shutdown}.get(str(method))
            if handler is None:
                raise DflError(f"unknown method {method!r}; use ping, load, swap, models or shutdown")
            return {"id": request_id, "ok": True, "result": handler(params)}
        except json.JSONDecodeError as exc:
            return {"id": request_id, "ok": False, "error": f"request is not JSON ({exc.msg} at column {exc.colno})"}
        except DflError as exc:
            return {"id": request_id, "ok": False, "error": str(exc)}
        except (TypeError, ValueError, KeyError) as exc:
            return {"id": request_id, "ok": False, "error": f"bad request: {exc}"}
        except OSError as exc:  # e.g. an out path in a folder that cannot be written
            where = f"{exc.filename}: " if exc.filename else ""
            return {"id": request_id, "ok": False, "error": f"{where}{exc.strerror or exc}"}

    def ping(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"version": dfl_vfx.__version__, "models": len(self._runtimes)}

    def models(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"models": [{"model": k[0], "backend": r.backend_name, "device": r.device}
                           for k, r in self._runtimes.items()]}

    def shutdown(self, params: dict[str, Any]) -> dict[str, Any]:
        self.running = False
        return {"bye": True}

    def load(self, params: dict[str, Any]) -> dict[str, Any]:
        engine = self._engine(params)
        info = engine.runtime.info
        return {"model": str(info.path), "resolution": info.resolution, "face_type": engine.face_type.cli_name,
                "backend": engine.runtime.backend_name, "device": engine.runtime.device}

    def swap(self, params: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        if "plate" not in params or "frame" not in params:
            raise DflError("swap needs params plate and frame")
        try:
            frame = int(params["frame"])
        except (TypeError, ValueError):
            raise DflError(f"params.frame {params['frame']!r} is not a frame number") from None
        sequence = open_sequence(str(params["plate"]), str(frame))
        source = sequence.path(frame)
        if not source.is_file():
            raise DflError(f"frame {frame}: {source} does not exist")
        out = Path(params.get("out") or self.cache_dir / source.name)
        if out.is_dir():
            raise DflError(f"params.out {out} is a folder; give the path of the frame to write")
        engine = self._engine(params)
        check_output_format(out, engine.settings.layers, "params.layers", f"params.out frames like {out.name}",
                            'give an .exr out or "layers": ["rgba"]')
        plans = faceset_plans(params["faceset"], [frame]).get(frame, []) if params.get("faceset") else None
        result = swap_frame(engine, source, out, frame, plans, None if plans is not None else self._finder(),
                            params.get("compression"))
        return {"out": str(out), "frame": frame, "faces": len(result.faces),
                "bboxes": [list(face.bbox) for face in result.faces], "seconds": round(time.perf_counter() - start, 4),
                "infer_s": round(result.times.infer, 4), "merge_s": round(result.times.merge, 4)}

    # -- caches -------------------------------------------------------------------------------------------------

    def _settings(self, params: dict[str, Any]) -> SwapSettings:
        if "model" not in params:
            raise DflError("params.model is required (an .onnx, .dfm or model folder)")
        merge_params = params.get("settings") or {}
        unknown = sorted(set(merge_params) - _MERGE_FIELDS)
        if unknown:
            raise DflError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_MERGE_FIELDS))}")
        layers = tuple(params.get("layers") or DEFAULT_LAYERS)
        return SwapSettings(model=str(params["model"]), merge=MergeSettings(**merge_params),
                            layers=("rgba",) + tuple(x for x in layers if x != "rgba"),
                            backend=str(params.get("backend", "auto")), device=str(params.get("device", "auto")),
                            face_type=params.get("face_type"), colorspace=params.get("colorspace"))

    def _engine(self, params: dict[str, Any]) -> SwapEngine:
        from dfl_vfx.runtime import load_runtime

        settings = self._settings(params)
        key = json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str)
        runtime_key = (settings.model, settings.backend, settings.device, settings.batch)
        with self._lock:
            if key not in self._engines:
                if runtime_key not in self._runtimes:
                    self._runtimes[runtime_key] = load_runtime(settings.model, backend=settings.backend,
                                                               device=settings.device, max_batch=settings.batch)
                self._engines[key] = SwapEngine(settings, runtime=self._runtimes[runtime_key])
            return self._engines[key]


def serve_stdio(service: SwapService, stdin: IO[str] = sys.stdin, stdout: IO[str] = sys.stdout) -> None:
    """Answer JSON lines from ``stdin`` until EOF or ``shutdown``."""
    for line in stdin:
        if not line.strip():
            continue
        stdout.write(json.dumps(service.handle_line(line)) + "\n")
        stdout.flush()
        if not service.running:
            break


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        service: SwapService = self.server.service  # type: ignore[attr-defined]
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace")
            if not line.strip():
                continue
            self.wfile.write((json.dumps(service.handle_line(line)) + "\n").encode())
            self.wfile.flush()
            if not service.running:
                threading.Thread(target=self.server.shutdown, daemon=True).start()
                return


class LocalServer(socketserver.ThreadingTCPServer):
    """A TCP server on 127.0.0.1 only; each connection speaks JSON lines."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, service: SwapService, port: int = 0) -> None:
        super().__init__((LOCALHOST, port), _Handler)
        self.service = service

    @property
    def port(self) -> int:
        return int(self.server_address[1])
