"""dfl_host.exr_header, the hosts' standard-library EXR header reader: windows, channels and string attributes of
files OpenImageIO writes, headers past the first read, files cut short or not EXR, and the same read in Python 3.9."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from dfl_host.exr_header import Box, ExrHeaderError, read_header

REPO = Path(__file__).resolve().parents[2]
FACES = [{"bbox": [10, 12, 40, 48], "px_per_unit": 0.8602150537634409}]


def _write_exr(path: Path, channels: tuple[str, ...] = ("R", "G", "B", "A"), attributes: dict | None = None) -> Path:
    """A 6x4 half EXR whose data window is (-2, -1)..(5, 4) inside a 4x3 display window, with string attributes."""
    spec = oiio.ImageSpec(8, 6, len(channels), oiio.HALF)
    spec.x, spec.y = -2, -1
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, 4, 3
    spec.channelnames = channels
    for name, value in (attributes or {}).items():
        spec.attribute(name, value)
    out = oiio.ImageOutput.create(str(path))
    assert out is not None and out.open(str(path), spec), oiio.geterror()
    assert out.write_image(np.zeros((6, 8, len(channels)), np.float16))
    out.close()
    return path


def test_windows_channels_and_string_attributes(tmp_path: Path) -> None:
    path = _write_exr(tmp_path / "a.exr", ("matte.A", "raw.R"), {"dfl_vfx:faces": json.dumps(FACES)})
    header = read_header(str(path))
    assert header.data_window == Box(-2, -1, 5, 4) and header.data_window.width == 8
    assert header.display_window == Box(0, 0, 3, 2) and header.display_window.centre == (1.5, 1.0)
    assert header.channels == ("matte.A", "raw.R")
    assert header.json_attribute("dfl_vfx:faces") == FACES  # floats round-trip exactly through the JSON text
    assert header.json_attribute("dfl_vfx:swap") is None


def test_a_header_longer_than_the_first_read(tmp_path: Path) -> None:
    """The reader starts with 64 KiB and reads more while the header runs on."""
    faces = [dict(FACES[0], note="x" * 200_000)]
    header = read_header(str(_write_exr(tmp_path / "long.exr", attributes={"dfl_vfx:faces": json.dumps(faces)})))
    assert header.json_attribute("dfl_vfx:faces") == faces


def test_not_json_is_none(tmp_path: Path) -> None:
    header = read_header(str(_write_exr(tmp_path / "b.exr", attributes={"dfl_vfx:faces": "[{"})))
    assert header.text["dfl_vfx:faces"] == "[{" and header.json_attribute("dfl_vfx:faces") is None


@pytest.mark.parametrize("keep", [0, 7, 60, 300])
def test_a_file_cut_short_is_an_error_naming_it(tmp_path: Path, keep: int) -> None:
    whole = _write_exr(tmp_path / "whole.exr", attributes={"dfl_vfx:faces": json.dumps(FACES)}).read_bytes()
    cut = tmp_path / "cut.exr"
    cut.write_bytes(whole[:keep])
    problem = "not an OpenEXR file" if keep < 8 else "header cut short"
    with pytest.raises(ExrHeaderError, match=f"cut.exr: {problem}"):
        read_header(str(cut))


def test_other_files_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.exr"
    text.write_text("not an image\n" * 20)
    with pytest.raises(ExrHeaderError, match="notes.exr: not an OpenEXR file"):
        read_header(str(text))
    with pytest.raises(OSError):
        read_header(str(tmp_path / "missing.exr"))


def test_the_header_reads_in_python_39(python39: str, tmp_path: Path) -> None:
    path = _write_exr(tmp_path / "a.exr", attributes={"dfl_vfx:faces": json.dumps(FACES)})
    script = ("import json, sys\nfrom dfl_host.exr_header import read_header\nh = read_header(sys.argv[1])\n"
              "print(json.dumps([list(sys.version_info[:2]), h.data_window.width, h.json_attribute('dfl_vfx:faces')]))")
    done = subprocess.run([python39, "-c", script, str(path)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[3, 9], 8, FACES]
