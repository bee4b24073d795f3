"""`dfl-vfx serve`: JSON lines over stdin/stdout and over a 127.0.0.1 socket, models kept loaded, errors as data."""

import io
import json
import socket
import threading
from pathlib import Path

import numpy as np

from dfl_vfx.io.image import Image, read_image, write_image
from dfl_vfx.swap.serve import LOCALHOST, LocalServer, SwapService, serve_stdio


def _request(i: int, method: str, **params) -> str:
    return json.dumps({"id": i, "method": method, "params": params}) + "\n"


def test_stdio_swaps_frames_and_keeps_the_model(small_shot, facesets, swap_model, tmp_path: Path) -> None:
    plate = str(small_shot / "plate" / "plate.####.exr")
    lines = "".join([
        _request(1, "ping"),
        _request(2, "swap", plate=plate, frame=1001, model=str(swap_model[1]), faceset=str(facesets[1]),
                 out=str(tmp_path / "a.exr"), settings={"erode": 10}),
        _request(3, "swap", plate=plate, frame=1002, model=str(swap_model[1]), faceset=str(facesets[1]),
                 out=str(tmp_path / "b.exr"), settings={"erode": 10}),
        "not json\n",
        _request(5, "swap", plate=plate, frame=1001, model=str(swap_model[1]), settings={"erode": 9999}),
        _request(6, "models"),
        _request(7, "shutdown"),
        _request(8, "ping"),
    ])
    stdout = io.StringIO()
    service = SwapService(tmp_path / "cache")
    serve_stdio(service, io.StringIO(lines), stdout)
    replies = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [r["id"] for r in replies] == [1, 2, 3, None, 5, 6, 7]  # nothing answered after shutdown
    assert replies[1]["ok"] and replies[1]["result"]["faces"] == 1
    assert read_image(tmp_path / "b.exr").channels[:4] == ["R", "G", "B", "A"]
    assert not replies[3]["ok"] and "not JSON" in replies[3]["error"]
    assert not replies[4]["ok"] and "--erode 9999" in replies[4]["error"]
    assert len(replies[5]["result"]["models"]) == 1  # one runtime served every request


def test_socket_is_local_only_and_answers_lines(small_shot, swap_model, tmp_path: Path) -> None:
    service = SwapService(tmp_path / "cache")
    with LocalServer(service, 0) as server:
        assert server.server_address[0] == LOCALHOST
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        with socket.create_connection((LOCALHOST, server.port), timeout=60) as conn:
            stream = conn.makefile("rw")
            stream.write(_request(1, "load", model=str(swap_model[1])))
            stream.flush()
            loaded = json.loads(stream.readline())
            stream.write(_request(2, "nope"))
            stream.flush()
            unknown = json.loads(stream.readline())
            stream.write(_request(3, "shutdown"))
            stream.flush()
            json.loads(stream.readline())
        thread.join(timeout=10)
    assert loaded["ok"] and loaded["result"]["resolution"] == 64 and loaded["result"]["face_type"] == "full_face"
    assert not unknown["ok"] and "unknown method" in unknown["error"]
    assert not thread.is_alive()


def test_bad_requests_get_one_line_answers(small_shot, swap_model, tmp_path: Path) -> None:
    depth = tmp_path / "depth.1001.exr"
    write_image(depth, Image.from_array(np.ones((32, 48, 1), np.float32), channels=["depth.Z"], fmt="float"))
    png = tmp_path / "png.1001.png"
    write_image(png, Image.from_array(np.full((32, 48, 3), 0.5, np.float32), fmt="uint8"))
    plate = str(small_shot / "plate" / "plate.####.exr")
    model = str(swap_model[1])
    service = SwapService(tmp_path / "cache")
    lines = [
        _request(1, "swap", plate=str(depth), frame=1001, model=model, out=str(tmp_path / "d.exr")),
        _request(2, "swap", plate=plate, frame="first", model=model),
        _request(3, "swap", plate=plate, frame=1001, model=model, out=str(tmp_path)),
        _request(4, "swap", plate=str(png), frame=1001, model=model, out=str(tmp_path / "p.png")),
        json.dumps({"id": 5, "method": "swap", "params": [plate, 1001]}),
    ]
    replies = [service.handle_line(line) for line in lines]
    assert [r["ok"] for r in replies] == [False] * 5
    errors = [r["error"] for r in replies]
    assert all("\n" not in e for e in errors)
    assert str(depth) in errors[0] and "no R, G, B channels (has depth.Z)" in errors[0]  # was "'R' is not in list"
    assert errors[1] == "params.frame 'first' is not a frame number"
    assert "is a folder" in errors[2]
    assert errors[3].startswith("params.layers rgba,mask,face: params.out frames like p.png are PNG, which cannot "
                                "hold the mask, face layer(s)") and errors[3].endswith('"layers": ["rgba"]')
    assert errors[4].startswith("params must be a JSON object")  # was an AttributeError that ended the server
