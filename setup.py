"""Build script: the Python package plus the native core (C++17, pybind11).

Project metadata lives in pyproject.toml; this file only declares the compiled extension.
"""

from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

NATIVE_SOURCES = sorted(str(p) for p in Path("native/src").glob("*.cpp"))

setup(
    ext_modules=[
        Pybind11Extension(
            "dfl_vfx._native",
            NATIVE_SOURCES,
            include_dirs=["native/include"],
            cxx_std=17,
            extra_compile_args=["-O3"],
        )
    ],
    cmdclass={"build_ext": build_ext},
)
