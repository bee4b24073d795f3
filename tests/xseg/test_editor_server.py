"""The label editor's server over HTTP: token and host checks, display encoding, saving and refusing labels."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from dfl_vfx.color.ocio import SRGB_SPACE, WorkingSpace
from dfl_vfx.errors import DflError
from dfl_vfx.face.template import FRONTAL_FACE_68
from dfl_vfx.faceset.faceset import Faceset
from dfl_vfx.faceset.metadata import FaceMetadata
from dfl_vfx.io.image import Image, write_image
from dfl_vfx.xseg.editor.server import EditorServer, EditorSession, open_editor
from dfl_vfx.xseg.labels import matte_label_path, read_polygons

SIZE = 96
STATIC = Path(__file__).resolve().parents[2] / "dfl_vfx" / "xseg" / "editor" / "static"


def astronaut_srgb(size: int = SIZE) -> np.ndarray:
    crop = skimage.data.astronaut()[20:240, 110:330].astype(np.float32) / 255.0
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def make_faceset(root: Path, frames=(1001, 1002, 1003)) -> Faceset:
    faceset = Faceset.create(root, face_type="whole_face", size=SIZE)
    working = WorkingSpace(plate_space=SRGB_SPACE).to_working(astronaut_srgb())
    for frame in frames:
        landmarks = (FRONTAL_FACE_68 - [0.49, 0.55]) * (0.55 * SIZE) + SIZE / 2.0
        meta = FaceMetadata(
            face_type="whole_face", size=SIZE, source_filename=f"plate.{frame}.exr", source_frame=frame,
            face_index=0, source_rect=[0.0, 0.0, 10.0, 10.0], source_landmarks=landmarks, landmarks=landmarks,
            image_to_face_mat=[[1, 0, 0], [0, 1, 0]], pose={"pitch": 0.0, "yaw": 0.0, "roll": 0.0},
            detector="s3fd", score=0.9, colorspace="ACEScct", plate_colorspace=SRGB_SPACE,
        )
        faceset.add(faceset.name_for(meta.source_filename, 0), working, meta)
    return faceset


def fetch(url: str, body: dict | None = None, host: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     method="GET" if body is None else "POST")
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture()
def editor(tmp_path):
    faceset = make_faceset(tmp_path / "fs")
    with open_editor(faceset.root) as server:
        yield server


def test_every_url_needs_the_token_and_a_local_host(editor):
    assert editor.server_address[0] == "127.0.0.1" and len(editor.token) >= 40
    assert fetch(editor.url)[0] == 200
    base = f"http://127.0.0.1:{editor.port}/"
    for path in ("", "api/faces", f"{editor.token[:-1]}x/api/faces", "editor.js", "api/faces/plate.1001_0.png"):
        assert fetch(base + path)[0] == 403, path
    assert fetch(editor.url + "api/faces", host=f"evil.example:{editor.port}")[0] == 403  # DNS rebinding
    status, body = fetch(editor.url + "api/faces/plate.1001_0.png", {"polygons": []}, host="evil.example")
    assert status == 403
    assert fetch(editor.url + "api/faces/..%2Ffaceset.json")[0] == 404
    assert fetch(editor.url + "nothing")[0] == 404


def test_face_list_and_display_encoding(editor):
    status, body = fetch(editor.url + "api/faces")
    listing = json.loads(body)
    assert status == 200 and listing["size"] == SIZE and listing["colorspace"] == "ACEScct"
    assert [f["name"] for f in listing["faces"]] == ["plate.1001_0.png", "plate.1002_0.png", "plate.1003_0.png"]
    assert listing["prediction"] is False
    status, png = fetch(editor.url + "api/faces/plate.1002_0.png/image.png")
    shown = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    assert status == 200 and shown.dtype == np.uint8 and shown.shape == (SIZE, SIZE, 3)
    # working space (ACEScct, 16-bit) -> sRGB display: the photo the faces were made from, to within 1.5/255
    error = np.abs(shown.astype(np.float32) / 255.0 - astronaut_srgb())
    assert error.max() <= 1.5 / 255.0, error.max()


def test_save_through_the_api_and_refusals_keep_what_was_saved(editor):
    name = "plate.1001_0.png"
    polygons = [{"type": 1, "pts": [[4.5, 5.25], [80.0, 6.0], [70.0, 90.0]]},
                {"type": 0, "pts": [[30.0, 30.0], [50.0, 30.0], [40.0, 45.0]]}]
    status, body = fetch(editor.url + f"api/faces/{name}", {"polygons": polygons})
    assert status == 200 and json.loads(body) == {"saved": name, "polygons": 2}
    status, body = fetch(editor.url + f"api/faces/{name}")
    assert json.loads(body)["polygons"] == polygons
    path = editor.session.faceset.face_path(name)
    saved = path.read_bytes()
    bad = {
        "crosses itself (edges 1 and 3)": [{"type": 1, "pts": [[2, 2], [40, 40], [40, 2], [2, 40]]}],
        "point (120.0, 3.0) lies outside the 96x96 face": [{"type": 0, "pts": [[1, 3], [120, 3], [30, 30]]}],
        "has 2 distinct point(s)": [{"type": 1, "pts": [[1, 1], [9, 9]]}],
        "type 7 is neither": [{"type": 7, "pts": [[1, 1], [9, 9], [1, 9]]}],
    }
    for message, polys in bad.items():
        status, body = fetch(editor.url + f"api/faces/{name}", {"polygons": polys})
        error = json.loads(body)["error"]
        assert status == 400 and message in error and error.startswith(name) and "\n" not in error, error
    assert path.read_bytes() == saved
    assert [p.kind for p in read_polygons(editor.session.faceset.record(path).meta)] == ["include", "exclude"]
    status, body = fetch(editor.url + f"api/faces/{name}", {"no": "polygons"})
    assert status == 400 and "no polygon list" in json.loads(body)["error"]
    assert fetch(editor.url + "api/faces/plate.9999_0.png", {"polygons": []})[0] == 404


def test_prediction_overlay_from_applied_masks_and_imported_mattes(tmp_path):
    faceset = make_faceset(tmp_path / "fs", frames=(1001, 1002))
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[20:60, 30:70] = 1.0
    (faceset.root / "xseg").mkdir()
    write_image(faceset.root / "xseg" / "plate.1001_0.png", Image.from_array(mask, fmt="uint8"))
    write_image(matte_label_path(faceset, "plate.1002_0.png"), Image.from_array(mask * 0.5, fmt="uint16"))
    with EditorServer(EditorSession(faceset)) as server:
        listing = json.loads(fetch(server.url + "api/faces")[1])
        assert listing["prediction"] is True and [f["matte"] for f in listing["faces"]] == [False, True]
        status, png = fetch(server.url + "api/faces/plate.1001_0.png/prediction.png")
        shown = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert status == 200 and shown.shape == (SIZE, SIZE) and int(shown.sum()) == 40 * 40 * 255
        assert fetch(server.url + "api/faces/plate.1002_0.png/prediction.png")[0] == 404
        status, png = fetch(server.url + "api/faces/plate.1002_0.png/matte.png")
        matte = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert status == 200 and set(np.unique(matte)) == {0, 128}


def test_page_loads_nothing_from_elsewhere():
    """Every src/href/url()/fetch in the page is relative: no scheme, no protocol-relative //host."""
    texts = {name: (STATIC / name).read_text(encoding="utf-8") for name in ("index.html", "editor.js", "editor.css")}
    for name, text in texts.items():
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name
        assert "@import" not in text and "@font-face" not in text, name
    assert re.findall(r'(?:src|href)="([^"]+)"', texts["index.html"]) == ["data:,", "editor.css", "editor.js"]


def test_an_empty_faceset_and_a_busy_port_are_one_line_errors(tmp_path, editor):
    empty = Faceset.create(tmp_path / "empty", face_type="whole_face", size=SIZE)
    with pytest.raises(DflError, match="has no faces to label; extract or import faces first"):
        open_editor(empty.root)
    with pytest.raises(DflError, match=rf"--port {editor.port}: cannot listen on 127.0.0.1 .*choose another port"):
        open_editor(editor.session.faceset.root, port=editor.port)


def _interruptible() -> None:
    """In the child before exec: Ctrl-C as a terminal delivers it. A child inherits an ignored or blocked SIGINT
    (a shell's background job ignores it; native libraries loaded by earlier tests may leave it blocked), and
    Python then installs no KeyboardInterrupt handler."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_cli_edit_prints_the_url_and_stops_on_ctrl_c(tmp_path):
    faceset = make_faceset(tmp_path / "fs", frames=(1001,))
    command = [sys.executable, "-c", "from dfl_vfx.cli.main import main; raise SystemExit(main())",
               "xseg", "edit", str(faceset.root)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_interruptible)
    try:
        line = process.stdout.readline()
        url = re.search(r"open (http://127\.0\.0\.1:\d+/[\w-]{40,}/)", line)
        assert url and "1 faces, 0 with polygons, 0 with mattes" in line, line
        status, body = fetch(url[1] + "api/faces")
        assert status == 200 and json.loads(body)["faces"][0]["name"] == "plate.1001_0.png"
        process.send_signal(signal.SIGINT)
        # communicate drains stderr (the request log) while waiting; 60 s: a loaded 2-core CI machine runs the suite
        _, errors = process.communicate(timeout=60)
        assert process.returncode == 0 and "editor stopped" in errors, errors[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_model_prediction_overlay(tmp_path):
    import torch

    from dfl_vfx.models.checkpoint import save_checkpoint
    from dfl_vfx.xseg.model import KIND, XSeg, XSegConfig

    torch.manual_seed(0)
    cfg = XSegConfig.reduced()  # 64 px: the 96 px faces are resized in and the mask back out
    net = XSeg(cfg).eval()
    save_checkpoint(tmp_path / "xseg", {"kind": KIND, "iteration": 3, "model": net.state_dict(),
                                        "config": {"xseg": cfg.to_dict(), "face_type": "whole_face"}})
    faceset = make_faceset(tmp_path / "fs", frames=(1001,))
    head = Faceset.create(tmp_path / "head", face_type="head", size=SIZE)
    head.add("a_0.png", np.zeros((SIZE, SIZE, 3), np.float32),
             dataclasses.replace(faceset.records()[0].meta, face_type="head"))
    with open_editor(head.root, model=tmp_path / "xseg") as server:  # the model is loaded on first use
        status, body = fetch(server.url + "api/faces/a_0.png/prediction.png")
        assert status == 400 and "holds head faces, the XSeg model" in json.loads(body)["error"]
    with pytest.raises(DflError, match=r"--model .*nothing: no XSeg checkpoint \(checkpoint.pt\) there"):
        open_editor(faceset.root, model=tmp_path / "nothing")
    with open_editor(faceset.root, model=tmp_path / "xseg") as server:
        assert json.loads(fetch(server.url + "api/faces")[1])["prediction"] is True
        status, png = fetch(server.url + "api/faces/plate.1001_0.png/prediction.png")
    shown = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    face = cv2.resize(faceset.read("plate.1001_0.png"), (64, 64), interpolation=cv2.INTER_AREA)
    with torch.inference_mode():
        mask = net(torch.from_numpy(np.clip(face, 0, 1).transpose(2, 0, 1).copy())[None])[1][0, 0].numpy()
    expected = cv2.resize(mask, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR) * 255.0
    assert status == 200 and shown.shape == (SIZE, SIZE)
    assert np.abs(shown - expected).max() <= 0.5 + 1e-3 and shown.std() > 0  # 8-bit rounding of the net's mask
