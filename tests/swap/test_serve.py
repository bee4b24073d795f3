"""`dfl-vfx serve`: JSON-RPC 2.0 lines on stdio and 127.0.0.1, token, output root, one loaded model per key,
malformed messages answered without stopping the server, cancel and ping while a range runs, two clients at once."""

import io
import json
import os
import queue
import shutil
import socket
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from dfl_vfx.io.image import read_header, read_image
from dfl_vfx.swap.serve import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    INVALID_SETTING,
    LOCALHOST,
    METHOD_NOT_FOUND,
    OUTPUT_REFUSED,
    PARSE_ERROR,
    REQUEST_CANCELLED,
    REQUEST_FAILED,
    UNAUTHORIZED,
    LocalServer,
    Request,
    SwapService,
    request_settings,
    serve_stdio,
    write_token_file,
)

FIRST = 1001


def _line(i, method: str, **params) -> bytes:
    return (json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode()


def _stdio(service: SwapService, lines: list[bytes]) -> tuple[dict, list[dict]]:
    """Run a scripted stdio session: (responses by id, notifications in order)."""
    stdout = io.BytesIO()
    serve_stdio(service, io.BytesIO(b"".join(lines)), stdout)
    messages = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert all(m["jsonrpc"] == "2.0" for m in messages)
    replies = {}
    for m in messages:
        if "id" in m:
            replies.setdefault(m["id"], []).append(m)
    assert all(len(v) == 1 for k, v in replies.items() if k is not None), "one answer per request"
    return {k: v[0] if k is not None else v for k, v in replies.items()}, [m for m in messages if "id" not in m]


@pytest.fixture()
def plate(small_shot) -> str:
    return str(small_shot / "plate" / "plate.####.exr")


@pytest.fixture()
def model(swap_model) -> str:
    return str(swap_model[1])


def test_stdio_swaps_frames_with_settings_by_schema_name_and_keeps_one_model(plate, model, facesets,
                                                                            tmp_path: Path) -> None:
    root = tmp_path / "root"
    service = SwapService(max_models=2)
    replies, _ = _stdio(service, [
        _line(1, "hello", output_root=str(root)),
        _line(2, "swap_frame", plate=plate, frame=FIRST, model=model, faceset=str(facesets[1]), out="a/a.exr",
              settings={"erode": 10, "layers": ["rgba", "mask"]}),
        _line(3, "swap_frame", plate=plate, frame=FIRST + 1, model=model, faceset=str(facesets[1]),
              out=str(root / "b.exr"), settings={"blur": 40, "merge_backend": "reference"}),
        _line(4, "swap_frame", plate=plate, frame=FIRST, model=model, out="c.exr", settings={"face_scale": 99}),
        _line(5, "swap_frame", plate=plate, frame=FIRST, model=model, out="c.exr", settings={"blurr": 4}),
        _line(6, "nope"),
        _line(7, "shutdown"),
        _line(8, "ping"),
    ])
    assert replies[1]["result"]["output_root"] == str(root.resolve()) and root.is_dir()
    assert replies[2]["result"]["faces"] == 1 and replies[3]["result"]["faces"] == 1
    assert replies[2]["result"]["out"] == str(root.resolve() / "a" / "a.exr")  # relative to the root
    assert read_header(root / "a" / "a.exr").channels == ["R", "G", "B", "A"]
    assert read_header(root / "a" / "layers" / "a.exr").channels == ["mask.A"]
    assert replies[2]["result"]["layers"] == str(root.resolve() / "a" / "layers" / "a.exr")
    header = json.loads(read_header(root / "b.exr").metadata["dfl_vfx:swap"])
    assert header["settings"]["blur"] == 40 and header["settings_hash"] == replies[3]["result"]["settings_hash"]
    assert replies[4]["error"]["code"] == INVALID_SETTING
    assert replies[4]["error"]["data"]["setting"] == "face_scale"  # a host labels it its own way
    assert replies[4]["error"]["message"].startswith("face_scale 99: out of range; use -50..50")
    assert replies[5]["error"]["code"] == INVALID_SETTING and replies[5]["error"]["data"]["setting"] == "blurr"
    assert replies[6]["error"]["code"] == METHOD_NOT_FOUND
    assert replies[7]["result"] == {"bye": True} and 8 not in replies  # nothing read after shutdown
    assert not (root / "c.exr").exists()
    assert len(service.loaded) == 1  # three settings, one loaded model
    service.close()


def test_malformed_messages_are_answered_and_the_server_stays_up(plate, model, tmp_path: Path) -> None:
    """Each of these ended the old stdio server with a traceback and no answer."""
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "notes.txt").write_text("a file")
    service = SwapService(output_root=tmp_path / "root")
    long_line = b'{"jsonrpc": "2.0", "id": 90, "method": "ping", "params": {"pad": "' + b"x" * (1 << 20) + b'"}}\n'
    replies, _ = _stdio(service, [
        b'{"jsonrpc": "2.0", "id": 1, "method": "load", "params": "model"}\n',
        b"[" * 100_000 + b"\n",
        _line(3, "swap_frame", plate=plate, frame=FIRST, model=model, out="notes.txt/f.1001.exr"),
        long_line,
        b"not json\n",
        b'[{"jsonrpc": "2.0", "id": 6, "method": "ping"}]\n',
        b'{"id": 7, "method": "ping"}\n',
        _line(8, "swap_frame", plate=plate, frame="first", model=model, out="f.exr"),
        b'\xff\xfe\n',
        _line(10, "ping"),
    ])
    assert replies[1]["error"]["code"] == INVALID_PARAMS
    assert replies[1]["error"]["message"].startswith("params must be a JSON object")
    errors_without_id = replies[None]
    assert [e["error"]["code"] for e in errors_without_id] == [PARSE_ERROR, INVALID_REQUEST, PARSE_ERROR,
                                                               INVALID_REQUEST, PARSE_ERROR]
    assert "nested too deeply" in errors_without_id[0]["error"]["message"]
    assert f"longer than {1 << 20} bytes" in errors_without_id[1]["error"]["message"]
    assert "batches are not supported" in errors_without_id[3]["error"]["message"]
    assert replies[3]["error"]["code"] == OUTPUT_REFUSED and "notes.txt is a file" in replies[3]["error"]["message"]
    assert 90 not in replies  # the over-long request was skipped, not half-read
    assert replies[7]["error"]["code"] == INVALID_REQUEST and "jsonrpc" in replies[7]["error"]["message"]
    assert replies[8]["error"] == {"code": INVALID_PARAMS, "message": 'params.frame "first" must be a frame number',
                                   "data": {"param": "frame"}}
    assert replies[10]["result"]["pong"] is True
    service.close()


def test_outputs_stay_inside_the_declared_root_and_off_the_inputs(plate, model, small_shot, facesets,
                                                                  tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    outside = tmp_path / "outside"
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path, target_is_directory=True)
    shot_copy = root / "shot"
    shutil.copytree(small_shot / "plate", shot_copy, ignore=shutil.ignore_patterns("plate.100[3-9].exr",
                                                                                   "plate.101*.exr"))
    own_plate = str(shot_copy / "plate.####.exr")
    before = (shot_copy / "plate.1002.exr").read_bytes()
    frame = dict(frame=FIRST, model=model)
    replies, _ = _stdio(SwapService(), [
        _line(1, "swap_frame", plate=plate, out=str(root / "x.exr"), **frame),  # no root declared yet
        _line(2, "hello", output_root="relative/root"),
        _line(3, "hello", output_root=str(root)),
        _line(4, "swap_frame", plate=plate, out=str(outside / "deep" / "x.exr"), **frame),
        _line(5, "swap_frame", plate=plate, out="../outside/x.exr", **frame),
        _line(6, "swap_frame", plate=plate, out="link/outside/x.exr", **frame),  # a symlink out of the root
        _line(7, "swap_frame", plate=own_plate, out=str(shot_copy / "plate.1001.exr"), **frame),  # itself
        _line(8, "swap_frame", plate=own_plate, out=str(shot_copy / "plate.1002.exr"), **frame),  # its sequence
        _line(9, "swap_frame", plate=own_plate, out=str(shot_copy / "plate.1013.exr"), **frame),  # a frame to come
        _line(10, "swap_range", plate=own_plate, out=str(shot_copy), model=model),
        _line(11, "swap_range", plate=plate, out=str(outside), model=model),
        _line(12, "swap_frame", plate=own_plate, out="swapped/plate.1001.exr", faceset=str(facesets[1]), **frame),
    ])
    codes = {i: replies[i].get("error", {}).get("code") for i in range(1, 13)}
    assert codes == {1: OUTPUT_REFUSED, 2: OUTPUT_REFUSED, 3: None, 4: OUTPUT_REFUSED, 5: OUTPUT_REFUSED,
                     6: OUTPUT_REFUSED, 7: OUTPUT_REFUSED, 8: OUTPUT_REFUSED, 9: OUTPUT_REFUSED, 10: OUTPUT_REFUSED,
                     11: OUTPUT_REFUSED, 12: None}
    assert "no output root declared" in replies[1]["error"]["message"]
    assert "is outside the output root" in replies[6]["error"]["message"]
    assert "is the plate frame itself" in replies[7]["error"]["message"]
    assert "is a frame of the plate" in replies[9]["error"]["message"]
    assert "would overwrite the plate" in replies[10]["error"]["message"]
    assert not outside.exists() and not (tmp_path / "relative").exists()
    assert (shot_copy / "plate.1002.exr").read_bytes() == before and not (shot_copy / "plate.1013.exr").exists()
    assert replies[12]["result"]["faces"] == 1


def test_settings_reach_the_engine_and_the_faceset_is_checked(plate, model, facesets, tmp_path: Path) -> None:
    wide = tmp_path / "wide_faces"
    shutil.copytree(facesets[1], wide)
    info = json.loads((wide / "faceset.json").read_text())
    (wide / "faceset.json").write_text(json.dumps(info | {"face_type": "wf"}))
    service = SwapService(output_root=tmp_path / "root")
    replies, _ = _stdio(service, [
        _line(1, "swap_frame", plate=plate, frame=FIRST, model=model, out="a.exr", faceset=str(wide)),
        _line(2, "swap_frame", plate=plate, frame=FIRST, model=model, out="b.exr",
              settings={"ocio_config": str(tmp_path / "missing.ocio")}),
        _line(3, "load", model=model, threads=1),
        _line(5, "swap_frame", plate=plate, frame=1099, model=model, out="c.exr"),
    ])
    session = service.open_session(lambda data: None, needs_token=False)
    entries = service.models(session, Request(4, "models", {}, True))["models"]
    assert replies[1]["error"]["code"] == REQUEST_FAILED
    assert "holds wf faces but the model was trained on full_face" in replies[1]["error"]["message"]
    assert replies[2]["error"]["code"] == REQUEST_FAILED and "missing.ocio" in replies[2]["error"]["message"]
    assert sorted(e["threads"] for e in entries) == [0, 1]  # threads make another runtime; settings do not
    assert {e["resolution"] for e in entries} == {64}
    assert replies[5]["error"]["code"] == REQUEST_FAILED and "1099" in replies[5]["error"]["message"]
    service.close()


def test_the_model_cache_is_bounded_and_unloads(swap_model, tmp_path: Path) -> None:
    service = SwapService(max_models=1)
    first, _ = _stdio(service, [_line(1, "load", model=str(swap_model[1]))])
    second, _ = _stdio(service, [_line(2, "load", model=str(swap_model[0]),
                                       settings={"backend": "torch", "device": "cpu"})])
    assert first[1]["result"]["backend"] == "onnxruntime" and second[2]["result"]["backend"] == "torch"
    session = service.open_session(lambda data: None, needs_token=False)
    entries = service.models(session, Request(1, "models", {}, True))["models"]
    assert [(Path(e["model"]), e["backend"]) for e in entries] == [(swap_model[0].resolve(), "torch")]
    assert service.unload(session, Request(2, "unload", {"model": str(swap_model[0])}, True)) == {"unloaded": 1}
    assert len(service.loaded) == 0
    service.close()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_scrubbing_a_live_setting_reuses_the_loaded_model(plate, model, facesets, tmp_path: Path,
                                                         monkeypatch) -> None:
    """A compositor scrubbing blur made one engine per value (and never let go): now one runtime and one set of
    colour conversions serve them all."""
    import dfl_vfx.swap.engine as engine_module

    built = []

    class CountedWorkingSpace(engine_module.WorkingSpace):
        def __init__(self, *args, **kwargs) -> None:
            built.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(engine_module, "WorkingSpace", CountedWorkingSpace)
    service = SwapService(output_root=tmp_path)
    session = service.open_session(lambda data: None, needs_token=False)

    def swap(i: int, blur: float) -> dict:
        params = {"plate": plate, "frame": FIRST, "model": model, "faceset": str(facesets[1]), "out": "scrub.exr",
                  "settings": {"blur": blur, "layers": ["rgba"]}}
        return service.swap_frame(session, Request(i, "swap_frame", params, True, service.default_output_root))

    for i in range(5):
        swap(i, 10.0 + i)
    runtime = service.loaded.engine(request_settings(model, {}, 0)).runtime
    rss = _rss_mb()
    hashes = {swap(i, 20.0 + i * 0.5)["settings_hash"] for i in range(100)}
    growth = _rss_mb() - rss
    assert len(hashes) == 100  # every value really was a different setting
    assert len(service.loaded) == 1 and service.loaded.engine(request_settings(model, {}, 0)).runtime is runtime
    assert len(built) == 1  # the plate -> model conversion was made once for 105 requests
    assert growth < 100, f"RSS grew {growth:.0f} MB over 100 requests"
    service.close()


class _Pipes:
    """A stdio server on a thread, fed and read through OS pipes like a host's subprocess."""

    def __init__(self, service: SwapService) -> None:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        self.to_server = os.fdopen(in_w, "wb", buffering=0)
        self._from_server = os.fdopen(out_r, "rb")
        self.messages: queue.Queue = queue.Queue()
        server_in, server_out = os.fdopen(in_r, "rb"), os.fdopen(out_w, "wb")

        def serve() -> None:
            serve_stdio(service, server_in, server_out)
            server_out.close()

        def read() -> None:
            for line in self._from_server:
                self.messages.put(json.loads(line))
            self.messages.put(None)

        self.server = threading.Thread(target=serve, daemon=True)
        self.server.start()
        threading.Thread(target=read, daemon=True).start()

    def send(self, data: bytes) -> None:
        self.to_server.write(data)

    def next(self) -> dict:
        message = self.messages.get(timeout=120)
        assert message is not None, "the server closed its output"
        return message


def test_cancel_and_ping_are_answered_while_a_range_runs(plate, model, facesets, tmp_path: Path) -> None:
    service = SwapService(output_root=tmp_path)
    pipes = _Pipes(service)
    pipes.send(_line("r", "swap_range", plate=plate, model=model, out="range", faceset=str(facesets[1]), jobs=1,
                     settings={"layers": ["rgba"]}))
    first = pipes.next()
    assert first["method"] == "progress" and first["params"]["id"] == "r" and first["params"]["total"] == 12
    pipes.send(_line("p", "ping") + _line("c", "cancel", id="r") + _line("c2", "cancel", id="nothing"))
    seen = []
    while not any(m.get("id") == "r" for m in seen):
        seen.append(pipes.next())
    order = [m.get("id") for m in seen if "id" in m]
    assert order.index("p") < order.index("r") and order.index("c") < order.index("r")
    answers = {m["id"]: m for m in seen if "id" in m}
    assert answers["c"]["result"] == {"cancelled": True} and answers["c2"]["result"] == {"cancelled": False}
    error = answers["r"]["error"]
    assert error["code"] == REQUEST_CANCELLED and error["data"]["status"] == "cancelled"
    done = error["data"]["done"]
    assert 1 <= len(done) < 12
    assert sorted(p.name for p in (tmp_path / "range").iterdir()) == [f"plate.{f}.exr" for f in done]
    plate_shape = read_image(plate.replace("####", str(FIRST))).pixels.shape[:2]
    for f in done:  # whole files only
        swapped = read_image(tmp_path / "range" / f"plate.{f}.exr")
        assert swapped.channels == ["R", "G", "B", "A"] and swapped.pixels.shape[:2] == plate_shape
    progress = [m["params"] for m in [first] + seen if m.get("method") == "progress"]
    assert [p["done"] for p in progress] == list(range(1, len(done) + 1))

    pipes.send(_line("again", "swap_range", plate=plate, model=model, out="range", faceset=str(facesets[1]),
                     frames=f"{done[-1]}-{done[-1] + 1}", settings={"layers": ["rgba"]}))
    messages = [pipes.next() for _ in range(3)]
    statuses = {m["params"]["frame"]: m["params"]["status"] for m in messages[:2]}
    assert statuses == {done[-1]: "skipped", done[-1] + 1: "swapped"}  # skipped: written with these settings
    assert messages[2]["result"]["status"] == "complete" and messages[2]["result"]["skipped"] == [done[-1]]
    pipes.send(_line("bye", "shutdown"))
    assert pipes.next() == {"jsonrpc": "2.0", "id": "bye", "result": {"bye": True}}
    pipes.server.join(timeout=30)
    assert not pipes.server.is_alive()
    service.close()


def _connect(port: int):
    conn = socket.create_connection((LOCALHOST, port), timeout=60)
    return conn, conn.makefile("rwb")


def _call(stream, i, method: str, **params) -> dict:
    stream.write(_line(i, method, **params))
    stream.flush()
    return json.loads(stream.readline())


@pytest.fixture()
def tcp_server(tmp_path: Path):
    service = SwapService(token="the-token", max_models=2)
    server = LocalServer(service, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, thread
    server.shutdown()
    server.server_close()
    service.close()


def test_tcp_connections_need_the_token(tcp_server) -> None:
    server, thread = tcp_server
    assert server.server_address[0] == LOCALHOST
    conn, stream = _connect(server.port)
    refused = _call(stream, 1, "shutdown")
    assert refused["error"]["code"] == UNAUTHORIZED and stream.readline() == b""  # answered, then closed
    conn.close()
    conn, stream = _connect(server.port)
    assert _call(stream, 1, "hello", token="not-the-token")["error"]["code"] == UNAUTHORIZED
    assert stream.readline() == b""
    conn.close()
    conn, stream = _connect(server.port)
    assert _call(stream, 1, "hello", token="the-token")["result"]["protocol"] == 1
    assert _call(stream, 2, "ping")["result"]["pong"] is True
    conn.close()
    assert thread.is_alive()  # no shutdown came through without the token


def test_two_tcp_clients_are_served_at_once(tcp_server, plate, model, facesets, tmp_path: Path) -> None:
    server, _ = tcp_server
    results: dict[int, dict] = {}
    failures: list[BaseException] = []

    def client(n: int) -> None:
        try:
            conn, stream = _connect(server.port)
            with conn:
                root = tmp_path / f"client{n}"
                assert _call(stream, 1, "hello", token="the-token", output_root=str(root))["result"]
                for k in range(3):
                    reply = _call(stream, 2 + k, "swap_frame", plate=plate, frame=FIRST + n * 3 + k, model=model,
                                  faceset=str(facesets[1]), out=f"f{k}.exr", settings={"blur": 10 + n, "erode": k})
                    results[n * 3 + k] = reply["result"]
        except BaseException as exc:  # surfaced in the test thread
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures and len(results) == 6
    for index, result in results.items():
        n, k = divmod(index, 3)
        assert result["faces"] == 1 and result["frame"] == FIRST + index
        header = json.loads(read_header(result["out"]).metadata["dfl_vfx:swap"])
        assert Path(result["out"]).parent == (tmp_path / f"client{n}").resolve()
        assert (header["frame"], header["settings"]["blur"], header["settings"]["erode"]) == (FIRST + index, 10 + n, k)
    assert len(server.service.loaded) == 1


def test_inspect_reads_a_swapped_frame_header(plate, model, facesets, tmp_path: Path) -> None:
    service = SwapService(output_root=tmp_path)
    replies, _ = _stdio(service, [
        _line(1, "swap_frame", plate=plate, frame=FIRST, model=model, faceset=str(facesets[1]), out="s.exr",
              settings={"blur": 33}),
    ])
    inspected, _ = _stdio(service, [  # requests run concurrently: inspect once the frame is answered
        _line(2, "inspect", path=str(tmp_path / "s.exr")),
        _line(3, "inspect", path=str(tmp_path / "missing.exr")),
    ])
    replies |= inspected
    inspected = replies[2]["result"]
    assert inspected["swapped"] is True and inspected["channels"] == ["R", "G", "B", "A"]
    layers = inspected["layers"]  # the default layers: mask and face, cut to the face's box
    assert layers["path"] == str(tmp_path / "layers" / "s.exr")
    assert layers["channels"] == ["face.R", "face.G", "face.B", "face.A", "mask.A"]
    x0, y0, x1, y1 = inspected["attributes"]["dfl_vfx:faces"][0]["bbox"]
    assert layers["data_window"] == [x0, y0, x1 - x0, y1 - y0]
    assert layers["display_window"] == inspected["display_window"]
    swap = inspected["attributes"]["dfl_vfx:swap"]
    assert swap["settings"]["blur"] == 33 and swap["settings_hash"] == replies[1]["result"]["settings_hash"]
    faces = inspected["attributes"]["dfl_vfx:faces"]
    assert len(faces) == 1 and np.asarray(faces[0]["landmarks"]).shape == (68, 2)
    assert replies[3]["error"]["code"] == REQUEST_FAILED and "missing.exr" in replies[3]["error"]["message"]


def test_the_token_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "tokens" / "serve.token"
    write_token_file(path, "secret")
    assert path.read_text() == "secret\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
