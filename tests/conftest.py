"""The suite's options and fixtures: the `gpu` marker and `--device`, a small demo shot built once per session,
a read-only folder.

GPU tests carry ``@pytest.mark.gpu`` (optionally naming what else they need: ``"cuda_build"``, ``"tensorrt"``,
``"ort_cuda"``); they skip, naming the hardware, where it is missing, and ``pytest -m gpu`` runs just them. Tests
taking the ``device`` fixture run on the devices ``--device cpu|cuda|all`` chooses (default all: CUDA where present).
The engine is imported inside the fixtures, so this file loads on a GPU machine that lacks the image libraries.
"""

import contextlib
import ctypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

# tests/blender runs in Blender's own environment (.venv-blender, bpy), never in the engine's: `make test` runs it
collect_ignore = ["blender"]
SMALL_SHOT = dict(frames=12, width=640, height=360, overscan=24, source_photos=4, seed=3)
GPU_NEEDS = ("cuda_build", "tensorrt", "ort_cuda")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", choices=("cpu", "cuda", "all"), default="all",
                     help="devices for tests taking the `device` fixture (default all: CPU, and CUDA where present)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gpu(*needs): needs an NVIDIA GPU; needs may add 'cuda_build' (dfl_vfx's CUDA kernels), "
        "'tensorrt' or 'ort_cuda' (onnxruntime-gpu). Skipped, naming the hardware, where missing.")


def gpu_missing(needs: tuple[str, ...]) -> str | None:
    """Why a GPU test cannot run here (None: it can)."""
    unknown = [need for need in needs if need not in GPU_NEEDS]
    if unknown:
        raise ValueError(f"unknown gpu need {unknown[0]!r}; use {', '.join(GPU_NEEDS)}")
    if not torch.cuda.is_available():
        return "needs an NVIDIA GPU (CUDA driver)"
    if "cuda_build" in needs:
        from dfl_vfx import native

        if not native.cuda_compiled():
            return "needs the CUDA build of dfl_vfx (nvcc when it was installed)"
        if not native.cuda_available():
            return "needs an NVIDIA GPU that dfl_vfx's CUDA kernels support"
    if "tensorrt" in needs:
        from dfl_vfx.runtime.tensorrt_backend import tensorrt_available

        if not tensorrt_available():
            return "needs TensorRT on the GPU machine (it cannot be installed on the CPU CI machines)"
    if "ort_cuda" in needs:
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return "needs onnxruntime-gpu (the CUDA execution provider)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("gpu")
        if marker is not None:
            reason = gpu_missing(tuple(marker.args))
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``device``: the CPU always, CUDA where chosen by --device (skipped, naming the GPU, where there is none)."""
    if "device" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--device")
        devices = ("cpu", "cuda") if chosen == "all" else (chosen,)
        metafunc.parametrize("device", [pytest.param(d, marks=[pytest.mark.gpu] if d == "cuda" else [])
                                        for d in devices])


@pytest.fixture(scope="session")
def small_shot_config() -> Any:
    """The configuration (a DemoShotConfig) the ``small_shot`` fixture was built with."""
    from dfl_vfx.demo.shot import DemoShotConfig

    return DemoShotConfig(**SMALL_SHOT)


@pytest.fixture(scope="session")
def small_shot(tmp_path_factory: pytest.TempPathFactory, small_shot_config: Any) -> Path:
    """A 12-frame 640x360 demo shot (plate/plate.####.exr, src/src.####.png); do not modify it."""
    from dfl_vfx.demo.shot import build_demo_shot

    root = tmp_path_factory.mktemp("shot")
    build_demo_shot(root, small_shot_config, progress=False)
    return root


TINY_MODEL = {"archi": "df-ud", "resolution": 64, "face_type": "f", "ae_dims": 32, "e_dims": 16, "d_dims": 16,
              "d_mask_dims": 16}


def _extract_pair(small_shot: Path, root: Path, face_type: str) -> tuple[Path, Path]:
    """(src, dst) facesets of the small shot at 64 px of ``face_type``."""
    from dfl_vfx.color.ocio import SRGB_SPACE
    from dfl_vfx.extract.pipeline import ExtractOptions, extract

    common = dict(face_type=face_type, size=64, select="largest", jobs=1, progress=False)
    extract(str(small_shot / "plate" / "plate.####.exr"), str(root / "dst"), ExtractOptions(**common))
    extract(str(small_shot / "src" / "src.####.png"), str(root / "src"),
            ExtractOptions(colorspace=SRGB_SPACE, **common))
    return root / "src", root / "dst"


@pytest.fixture(scope="session")
def facesets(small_shot: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(src, dst) full-face facesets at 64 px."""
    return _extract_pair(small_shot, tmp_path_factory.mktemp("train_facesets"), "f")


@pytest.fixture(scope="session")
def wf_facesets(small_shot: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(src, dst) whole-face facesets at 64 px (extract's default face type, at a tiny size)."""
    return _extract_pair(small_shot, tmp_path_factory.mktemp("wf_facesets"), "wf")


@pytest.fixture(scope="session")
def python39() -> str:
    """A Python 3.9 interpreter (Nuke 14's), to run host code in the oldest Python it must support."""
    import os

    for candidate in (os.environ.get("DFL_PYTHON39", ""), "/root/.pyenv/versions/3.9.18/bin/python3.9",
                      "/usr/bin/python3.9", "/usr/local/bin/python3.9"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("needs a Python 3.9 interpreter (Nuke 14's); set DFL_PYTHON39 to one")


@pytest.fixture()
def tiny_model() -> dict:
    return dict(TINY_MODEL)


SWAP_MODEL = {"archi": "df-ud", "resolution": 64, "face_type": "f", "ae_dims": 32, "e_dims": 16, "d_dims": 16,
              "d_mask_dims": 16}


@pytest.fixture(scope="session")
def swap_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model folder, exported .onnx) of a seeded, untrained full-face 64 px df-ud model."""
    from dfl_vfx.export.onnx_export import ExportMetadata, export_onnx
    from dfl_vfx.models.checkpoint import save_checkpoint
    from dfl_vfx.models.config import ModelConfig
    from dfl_vfx.models.saehd import SAEHD

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
