"""The same settings through the CLI and through `serve` give bit-identical frames (one engine path, one schema)."""

import io
import json
from pathlib import Path

import numpy as np

from dfl_vfx.cli.main import main
from dfl_vfx.io.image import read_image
from dfl_vfx.swap.layout import layers_path
from dfl_vfx.swap.serve import SwapService, serve_stdio

FRAME = 1004
SETTINGS = {"erode": 12, "blur": 40, "color_transfer": "mkl", "face_scale": 5, "opacity": 0.8,
            "face_exposure": 0.25, "interpolation": "lanczos", "layers": ["rgba", "mask", "matte", "raw"]}


def _cli_flags(settings: dict) -> list[str]:
    flags = []
    for name, value in settings.items():
        flags += ["--" + name.replace("_", "-"), ",".join(value) if isinstance(value, list) else str(value)]
    return flags


def test_cli_and_serve_write_bit_identical_frames(small_shot, facesets, swap_model, tmp_path: Path, capsys) -> None:
    plate = str(small_shot / "plate" / "plate.####.exr")
    # --jobs 2 on this 2-core machine gives each frame one thread; serve is asked for the same, so ONNX Runtime
    # and the native merge sum in the same order
    code = main(["swap", plate, "--model", str(swap_model[1]), "--faceset", str(facesets[1]), "--frames", str(FRAME),
                 "--out", str(tmp_path / "cli"), "--jobs", "2", "--no-progress", *_cli_flags(SETTINGS)])
    capsys.readouterr()
    assert code == 0
    service = SwapService(max_models=1)
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {"output_root": str(tmp_path / "serve")}},
        {"jsonrpc": "2.0", "id": 2, "method": "swap_frame",
         "params": {"plate": plate, "frame": FRAME, "model": str(swap_model[1]), "faceset": str(facesets[1]),
                    "out": f"plate.{FRAME}.exr", "settings": SETTINGS, "threads": 1}},
        {"jsonrpc": "2.0", "id": 3, "method": "shutdown"},
    ]
    stdout = io.BytesIO()
    serve_stdio(service, io.BytesIO(b"".join((json.dumps(r) + "\n").encode() for r in requests)), stdout)
    service.close()
    replies = {m["id"]: m for m in map(json.loads, stdout.getvalue().splitlines()) if "id" in m}
    assert "result" in replies[2], replies[2]

    cli_path, served_path = tmp_path / "cli" / f"plate.{FRAME}.exr", tmp_path / "serve" / f"plate.{FRAME}.exr"
    assert replies[2]["result"]["layers"] == str(layers_path(served_path.resolve()))
    for cli_file, served_file in ((cli_path, served_path), (layers_path(cli_path), layers_path(served_path))):
        cli, served = (read_image(f, pixel_type="native") for f in (cli_file, served_file))
        assert cli.channels == served.channels and cli.data_window == served.data_window
        assert cli.pixels.dtype == served.pixels.dtype
        assert np.array_equal(cli.pixels.view(np.uint8), served.pixels.view(np.uint8))  # bit for bit, NaN included
    layers = read_image(layers_path(cli_path), pixel_type="native")
    assert layers.channels == ["mask.A", "matte.A", "raw.R", "raw.G", "raw.B", "raw.A"]
    cli, served = (read_image(f, pixel_type="native") for f in (cli_path, served_path))
    assert cli.channels == ["R", "G", "B", "A"]
    swap_cli = json.loads(cli.metadata["dfl_vfx:swap"])
    swap_served = json.loads(served.metadata["dfl_vfx:swap"])
    assert swap_cli["settings_hash"] == swap_served["settings_hash"] == replies[2]["result"]["settings_hash"]
    assert swap_cli["settings"] == swap_served["settings"] and swap_cli["settings"]["opacity"] == 0.8
    assert cli.metadata["dfl_vfx:faces"] == served.metadata["dfl_vfx:faces"]
    mask = layers.pixels[..., layers.channels.index("mask.A")]
    assert 0.0 < float(mask.max()) <= 0.8 + 1e-3  # the opacity reached both
