"""Fixtures shared across test folders: a small demo shot built once per session, a read-only folder."""

import contextlib
import ctypes
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from dfl_vfx.color.ocio import SRGB_SPACE
from dfl_vfx.demo.shot import DemoShotConfig, build_demo_shot
from dfl_vfx.export.onnx_export import ExportMetadata, export_onnx
from dfl_vfx.extract.pipeline import ExtractOptions, extract
from dfl_vfx.models.checkpoint import save_checkpoint
from dfl_vfx.models.config import ModelConfig
from dfl_vfx.models.saehd import SAEHD

SMALL_SHOT = DemoShotConfig(frames=12, width=640, height=360, overscan=24, source_photos=4, seed=3)


@pytest.fixture(scope="session")
def small_shot_config() -> DemoShotConfig:
    """The configuration the ``small_shot`` fixture was built with."""
    return SMALL_SHOT


@pytest.fixture(scope="session")
def small_shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame 640x360 demo shot (plate/plate.####.exr, src/src.####.png); do not modify it."""
    root = tmp_path_factory.mktemp("shot")
    build_demo_shot(root, SMALL_SHOT, progress=False)
    return root


TINY_MODEL = {"archi": "df-ud", "resolution": 64, "face_type": "f", "ae_dims": 32, "e_dims": 16, "d_dims": 16,
              "d_mask_dims": 16}


@pytest.fixture(scope="session")
def facesets(small_shot: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(src, dst) full-face facesets at 64 px."""
    root = tmp_path_factory.mktemp("train_facesets")
    common = dict(face_type="f", size=64, select="largest", jobs=1, progress=False)
    extract(str(small_shot / "plate" / "plate.####.exr"), str(root / "dst"), ExtractOptions(**common))
    extract(str(small_shot / "src" / "src.####.png"), str(root / "src"),
            ExtractOptions(colorspace=SRGB_SPACE, **common))
    return root / "src", root / "dst"


@pytest.fixture()
def tiny_model() -> dict:
    return dict(TINY_MODEL)


SWAP_MODEL = {"archi": "df-ud", "resolution": 64, "face_type": "f", "ae_dims": 32, "e_dims": 16, "d_dims": 16,
              "d_mask_dims": 16}


@pytest.fixture(scope="session")
def swap_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model folder, exported .onnx) of a seeded, untrained full-face 64 px df-ud model."""
    root = tmp_path_factory.mktemp("swap_model")
    torch.manual_seed(0)
    model = SAEHD(ModelConfig.from_dict(SWAP_MODEL)).eval()
    save_checkpoint(root / "model", {"config": {"model": dict(SWAP_MODEL)}, "model": model.state_dict(),
                                     "iteration": 0})
    path = export_onnx(model, root / "model.onnx", ExportMetadata.for_model(model, iterations=0))
    return root / "model", path


@pytest.fixture(scope="module")
def single_thread():
    """Tiny tensors: one torch thread avoids oversubscription on small shared CI machines (20x slower under load).

    Folders of small-model tests make it autouse in their own conftest.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(
    params=[
        pytest.param("cpu"),
        pytest.param(
            "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU with CUDA")
        ),
    ]
)
def device(request: pytest.FixtureRequest) -> str:
    """Run a test on every device: the CPU always, CUDA where a GPU is present."""
    return request.param


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """Run a test in single and double precision."""
    return request.param


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_CAP_DAC_OVERRIDE = 1
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


@contextlib.contextmanager
def _without_dac_override() -> Iterator[None]:
    """Drop root's permission override (CAP_DAC_OVERRIDE) from this thread's effective set, then restore it.

    CI runs as root, and root writes anywhere; threads started inside the block inherit the reduced set.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0 or not data[0].effective & (1 << _CAP_DAC_OVERRIDE):
        yield  # not root, or no override to drop: permission bits already apply
        return
    saved = data[0].effective
    data[0].effective &= ~(1 << _CAP_DAC_OVERRIDE)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    try:
        yield
    finally:
        data[0].effective = saved
        libc.capset(ctypes.byref(header), data)


@pytest.fixture()
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write in (mode 0555, with root's override dropped for the test)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with _without_dac_override():
            yield folder
    finally:
        folder.chmod(0o755)
