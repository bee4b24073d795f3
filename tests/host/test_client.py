"""The host client against the real engine: `dfl-vfx serve` started through it, a frame and a range swapped with
progress, cancel, setting errors keeping their name, the engine dying, and the TCP token."""

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import dfl_host.errors as host_errors
import dfl_vfx.swap.serve as serve
from dfl_host import (
    EngineClient,
    EngineDied,
    EngineNotFound,
    OutputRefused,
    Progress,
    RequestCancelled,
    RequestFailed,
    SettingError,
    Unauthorized,
    find_engine,
)
from dfl_vfx.io.image import read_image

ENGINE = str(Path(sys.executable).with_name("dfl-vfx"))
FIRST = 1001


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("host_cache")
    with EngineClient.start(ENGINE, output_root=str(root), serve_args=["--max-models", "1"]) as client:
        yield client, root.resolve()
    assert client.process.returncode == 0  # shut down cleanly by the context manager


@pytest.fixture()
def plate(small_shot) -> str:
    return str(small_shot / "plate" / "plate.####.exr")


def test_the_error_codes_match_the_server() -> None:
    for name in ("PARSE_ERROR", "INVALID_REQUEST", "METHOD_NOT_FOUND", "INVALID_PARAMS", "INTERNAL_ERROR",
                 "UNAUTHORIZED", "OUTPUT_REFUSED", "INVALID_SETTING", "REQUEST_FAILED", "REQUEST_CANCELLED"):
        assert getattr(host_errors, name) == getattr(serve, name), name


def test_a_started_engine_greets_and_serves_its_schema(engine) -> None:
    client, root = engine
    assert client.server["protocol"] == 1 and client.server["output_root"] == str(root)
    assert client.ping()["pong"] is True
    schema = client.schema()
    assert "blur" in schema.live_names and "face_scale" in schema.rebake_names
    assert schema.flag("face_scale") == "--face-scale"


def test_swap_a_frame_and_inspect_it(engine, plate, swap_model, facesets) -> None:
    client, root = engine
    result = client.swap_frame(plate, FIRST, str(swap_model[1]), "one/plate.1001.exr", {"blur": 40},
                               faceset=str(facesets[1]))
    assert result["faces"] == 1 and result["out"] == str(root / "one" / "plate.1001.exr")
    inspected = client.inspect(result["out"])
    assert inspected["attributes"]["dfl_vfx:swap"]["settings"]["blur"] == 40
    assert inspected["attributes"]["dfl_vfx:swap"]["settings_hash"] == result["settings_hash"]
    assert len(client.models()) == 1


def test_a_range_streams_progress_in_the_waiting_thread(engine, plate, swap_model, facesets) -> None:
    client, root = engine
    seen: list[tuple[Progress, str]] = []
    result = client.swap_range(plate, str(swap_model[1]), "range", frames="1001-1004", faceset=str(facesets[1]),
                               jobs=2, settings={"layers": ["rgba"]},
                               on_progress=lambda p: seen.append((p, threading.current_thread().name)))
    assert result["status"] == "complete" and result["done"] == [1001, 1002, 1003, 1004]
    assert [p.done for p, _ in seen] == [1, 2, 3, 4] and {p.total for p, _ in seen} == {4}
    assert sorted(p.frame for p, _ in seen) == [1001, 1002, 1003, 1004]
    assert {p.status for p, _ in seen} == {"swapped"}
    assert {name for _, name in seen} == {threading.current_thread().name}
    assert sorted(path.name for path in (root / "range").iterdir()) == [f"plate.{f}.exr" for f in range(1001, 1005)]


def test_a_progress_callback_cancels_the_range(engine, plate, swap_model, facesets) -> None:
    client, root = engine
    seen: list[Progress] = []
    with pytest.raises(RequestCancelled) as caught:
        client.swap_range(plate, str(swap_model[1]), "cancelled", faceset=str(facesets[1]), jobs=1,
                          settings={"layers": ["rgba"]}, on_progress=lambda p: seen.append(p) or False)
    report = caught.value.report
    assert report["status"] == "cancelled" and 1 <= len(report["done"]) < 12
    written = sorted(path.name for path in (root / "cancelled").iterdir())
    assert written == [f"plate.{f}.exr" for f in report["done"]]  # whole frames only, no temporaries
    for name in written:
        assert read_image(root / "cancelled" / name).channels == ["R", "G", "B", "A"]
    assert client.ping()["pong"] is True  # the engine is still up


def test_engine_errors_map_to_short_exceptions(engine, plate, swap_model, tmp_path: Path) -> None:
    client, root = engine
    model = str(swap_model[1])
    with pytest.raises(SettingError) as caught:
        client.swap_frame(plate, FIRST, model, "bad.exr", {"face_scale": 99})
    assert caught.value.setting == "face_scale"  # a host labels it its own way
    assert caught.value.worded("Face scale") == "Face scale 99: out of range; use -50..50 (percent)"
    assert str(caught.value) == "face_scale 99: out of range; use -50..50 (percent)"
    with pytest.raises(SettingError) as caught:
        client.swap_frame(plate, FIRST, model, "bad.exr", {"blurr": 3})
    assert caught.value.setting == "blurr"
    with pytest.raises(OutputRefused, match="outside the output root"):
        client.swap_frame(plate, FIRST, model, str(tmp_path / "elsewhere.exr"))
    with pytest.raises(RequestFailed, match="1099"):
        client.swap_frame(plate, 1099, model, "late.exr")
    assert not (tmp_path / "elsewhere.exr").exists() and not (root / "bad.exr").exists()


def test_a_dead_engine_is_a_clear_error_not_a_hang(plate, swap_model, tmp_path: Path) -> None:
    client = EngineClient.start(ENGINE, output_root=str(tmp_path))
    call = client.start_swap_range(plate, str(swap_model[1]), "range", settings={"color_transfer": "idt"})
    client.process.kill()
    start = time.monotonic()
    with pytest.raises(EngineDied, match=r"the engine stopped \(exit status -9\)"):
        call.wait(timeout=60)
    with pytest.raises(EngineDied):
        client.ping()
    client.close()
    assert time.monotonic() - start < 30


def test_tcp_needs_the_token_from_the_private_file(tmp_path: Path) -> None:
    token_file = tmp_path / "private" / "serve.token"
    proc = subprocess.Popen([ENGINE, "serve", "--port", "0", "--token-file", str(token_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        listening = json.loads(proc.stdout.readline())
        assert listening["host"] == "127.0.0.1" and listening["token_file"] == str(token_file)
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32
        with pytest.raises(Unauthorized):
            EngineClient.connect(listening["listening"], token="not-the-token")
        with EngineClient.connect(listening["listening"], token_file=str(token_file),
                                  output_root=str(tmp_path / "root")) as client:
            assert client.ping()["pong"] is True
            client.shutdown()
        assert proc.wait(timeout=60) == 0
        assert token in proc.stderr.read()  # printed for whoever started the server
        assert not token_file.exists()  # removed when the server stops
    finally:
        proc.kill()
        proc.wait()


def test_the_engine_is_found_by_argument_environment_or_path(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DFL_VFX_EXE", ENGINE)
    assert find_engine() == ENGINE
    monkeypatch.setenv("DFL_VFX_EXE", str(tmp_path / "missing" / "dfl-vfx"))
    with pytest.raises(EngineNotFound, match=r"\$DFL_VFX_EXE .*missing/dfl-vfx is not an executable file"):
        find_engine()
    assert find_engine(ENGINE) == ENGINE  # an argument wins over the environment
    monkeypatch.delenv("DFL_VFX_EXE")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineNotFound, match="dfl-vfx not found: set DFL_VFX_EXE"):
        find_engine()
    monkeypatch.setenv("PATH", os.path.dirname(ENGINE))
    assert find_engine() == ENGINE
