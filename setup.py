"""Build script: the Python package plus the native core (C++17, pybind11) and, where nvcc is found, its CUDA kernels.

Project metadata lives in pyproject.toml; this file only declares the compiled extensions. ``dfl_vfx._native_cuda``
(native/cuda) is built when nvcc is found and the environment does not set ``DFL_WITH_CUDA=0``; its ``.cu`` files
are compiled by nvcc in parallel, linked with the static CUDA runtime. ``DFL_CUDA_ARCHS`` (e.g. ``"80,90"``) replaces
the default GPU architectures; the highest one is also embedded as PTX for newer GPUs.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.errors import CompileError

NATIVE_SOURCES = sorted(str(p) for p in Path("native/src").glob("*.cpp"))
CUDA_DIR = Path("native/cuda")
DEFAULT_CUDA_ARCHS = "75,80,86,89,90"


def find_nvcc() -> Path | None:
    """nvcc on PATH, else under $CUDA_HOME, else the default toolkit link."""
    candidates = [shutil.which("nvcc"), os.environ.get("CUDA_HOME") and Path(os.environ["CUDA_HOME"], "bin", "nvcc")]
    candidates.append(Path("/usr/local/cuda/bin/nvcc"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def find_cuda_root(nvcc: Path) -> Path:
    """The toolkit folder holding include/cuda_runtime_api.h (nvcc may be a wrapper script elsewhere)."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), nvcc.resolve().parent.parent]
    candidates.append("/usr/local/cuda")
    for candidate in candidates:
        if candidate and Path(candidate, "include", "cuda_runtime_api.h").is_file():
            return Path(candidate)
    sys.exit(f"error: nvcc found at {nvcc} but no CUDA toolkit headers; set CUDA_HOME or DFL_WITH_CUDA=0")


def cuda_library_dir(root: Path) -> Path:
    for sub in ("lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"):
        if (root / sub / "libcudart_static.a").is_file():
            return root / sub
    sys.exit(f"error: libcudart_static.a not found under {root}; set CUDA_HOME or DFL_WITH_CUDA=0")


def cuda_archs() -> list[str]:
    """Compute capabilities as digits (e.g. ["75", "90"]), ascending, from $DFL_CUDA_ARCHS or the default list."""
    text = os.environ.get("DFL_CUDA_ARCHS") or DEFAULT_CUDA_ARCHS
    archs = [re.sub(r"^(sm_|compute_)", "", item) for item in re.split(r"[,;\s]+", text.strip()) if item]
    if not archs or not all(re.fullmatch(r"\d+[a-z]?", arch) for arch in archs):
        sys.exit(f"error: DFL_CUDA_ARCHS={text!r}: expected compute capabilities such as '80,90'")
    return sorted(set(archs), key=lambda arch: (int(re.sub(r"\D", "", arch)), arch))


def gencode_flags(archs: list[str]) -> tuple[list[str], list[str]]:
    """nvcc -gencode flags (SASS for each arch, PTX for the highest) and the names recorded in build_info()."""
    flags = [f"-gencode=arch=compute_{arch},code=sm_{arch}" for arch in archs]
    ptx = re.sub(r"[a-z]$", "", archs[-1])  # arch-specific variants (90a) have no forward-compatible PTX
    flags.append(f"-gencode=arch=compute_{ptx},code=compute_{ptx}")
    return flags, [f"sm_{arch}" for arch in archs] + [f"compute_{ptx}"]


class CudaExtension(Pybind11Extension):
    """A pybind11 extension whose ``cuda_sources`` (.cu) are compiled by nvcc and linked in as objects."""

    def __init__(self, name: str, sources: list[str], *, cuda_sources: list[str], nvcc: Path,
                 nvcc_flags: list[str], **kwargs) -> None:
        super().__init__(name, sources, **kwargs)
        self.cuda_sources = cuda_sources
        self.nvcc = nvcc
        self.nvcc_flags = nvcc_flags


class BuildExt(build_ext):
    """pybind11's build_ext plus the nvcc step of CudaExtension (parallel, skipped for up-to-date objects).

    The binding sources of a CudaExtension are compiled in parallel too; other extensions build as before.
    """

    def build_extension(self, ext) -> None:
        if not isinstance(ext, CudaExtension):
            super().build_extension(ext)
            return
        ext.extra_objects = self.compile_cuda(ext)
        with ParallelCompile():
            super().build_extension(ext)

    def compile_cuda(self, ext: CudaExtension) -> list[str]:
        headers = [p for p in CUDA_DIR.iterdir() if p.suffix in (".h", ".cuh")]
        jobs = []
        for source in ext.cuda_sources:
            obj = Path(self.build_temp, source).with_suffix(".o")
            command = [str(ext.nvcc), *ext.nvcc_flags, "-c", source, "-o", str(obj)]
            jobs.append((source, obj, command, headers))
        workers = max(1, min(len(jobs), os.cpu_count() or 1))
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda job: self.run_nvcc(*job), jobs))

    def run_nvcc(self, source: str, obj: Path, command: list[str], headers: list[Path]) -> str:
        stamp = obj.with_suffix(".cmd")
        line = shlex.join(command)
        inputs = [Path(source), *headers]
        fresh = obj.is_file() and stamp.is_file() and stamp.read_text() == line
        if fresh and not self.force and all(p.stat().st_mtime <= obj.stat().st_mtime for p in inputs):
            return str(obj)
        obj.parent.mkdir(parents=True, exist_ok=True)
        print(line, flush=True)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise CompileError(f"nvcc failed on {source}:\n{result.stdout}{result.stderr}")
        if result.stdout or result.stderr:
            print(result.stdout + result.stderr, flush=True)  # warnings
        stamp.write_text(line)
        return str(obj)


class BuildPy(build_py):
    """build_py plus the Nuke plugin folder (nuke/) as package data at dfl_vfx/hosts/plugins/nuke, so an installed
    package can run `dfl-vfx host install nuke` (an editable install reads nuke/ from the checkout instead)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib, "dfl_vfx", "hosts", "plugins", "nuke")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree("nuke", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def cuda_extensions() -> list[Pybind11Extension]:
    """dfl_vfx._native_cuda when nvcc is found and DFL_WITH_CUDA is not "0"; else nothing."""
    if os.environ.get("DFL_WITH_CUDA") == "0":
        return []
    nvcc = find_nvcc()
    if nvcc is None:
        print("dfl_vfx: nvcc not found, building without CUDA kernels (dfl_vfx._native_cuda)", flush=True)
        return []
    root = find_cuda_root(nvcc)
    flags, arch_names = gencode_flags(cuda_archs())
    nvcc_flags = ["-O3", "-std=c++17", "-Xcompiler", "-fPIC", "-Xcompiler", "-fvisibility=hidden",
                  f"-I{CUDA_DIR}", *flags]
    return [
        CudaExtension(
            "dfl_vfx._native_cuda",
            sorted(str(p) for p in CUDA_DIR.glob("*.cpp")),
            cuda_sources=sorted(str(p) for p in CUDA_DIR.glob("*.cu")),
            nvcc=nvcc,
            nvcc_flags=nvcc_flags,
            include_dirs=[str(CUDA_DIR), str(root / "include")],
            library_dirs=[str(cuda_library_dir(root))],
            libraries=["cudart_static", "rt", "pthread", "dl"],
            define_macros=[("DFL_HAVE_CUDA", "1"), ("DFL_CUDA_ARCHS", '"' + ",".join(arch_names) + '"')],
            depends=sorted(str(p) for p in CUDA_DIR.iterdir() if p.suffix in (".cu", ".cuh", ".h")),
            cxx_std=17,
            extra_compile_args=["-O3"],
        )
    ]


setup(
    ext_modules=[
        Pybind11Extension(
            "dfl_vfx._native",
            NATIVE_SOURCES,
            include_dirs=["native/include"],
            cxx_std=17,
            extra_compile_args=["-O3"],
        ),
        *cuda_extensions(),
    ],
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
)
