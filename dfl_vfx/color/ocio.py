"""Colour management through OpenColorIO: config choice, colourspace names, plate <-> working space.

Faces go to the networks in a working space (ACEScct by default: logarithmic, finite for small negatives, values
above 1.0 survive and map back exactly). Alpha and masks never pass through a colour transform: RGB is
unpremultiplied first and re-premultiplied after.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Mapping

import numpy as np
import PyOpenColorIO as ocio

from dfl_vfx.errors import DflError

# Pinned by full name so a newer OpenColorIO cannot silently change the meaning of a name.
BUILTIN_CONFIG = "ocio://studio-config-v5.0.0_aces-v2.1_ocio-v2.6"
WORKING_SPACE = "ACEScct"
DEFAULT_PLATE_SPACE = "ACEScg"
SRGB_SPACE = "sRGB Encoded Rec.709 (sRGB)"
# Below this alpha a pixel has no colour to recover: it is left as it was (premultiplied RGB is then ~0).
ALPHA_EPSILON = 1e-6


@functools.lru_cache(maxsize=8)
def _load(source: str) -> ocio.Config:
    try:
        return ocio.Config.CreateFromFile(source)
    except Exception as exc:  # PyOpenColorIO raises several unrelated exception types
        raise DflError(f"OCIO config {source!r} cannot be loaded ({exc}); check $OCIO or --ocio-config") from None


def config_source(source: str | None = None) -> str:
    """The config to use: the explicit one, else $OCIO, else the pinned built-in studio config."""
    return source or os.environ.get("OCIO") or BUILTIN_CONFIG


def load_config(source: str | None = None) -> ocio.Config:
    """Load (and cache) the OpenColorIO config named by :func:`config_source`."""
    return _load(config_source(source))


def resolve_colorspace(name: str, config: ocio.Config | None = None) -> str:
    """Canonical colourspace name for a name, alias or role; unknown names raise a DflError with suggestions."""
    config = config or load_config()
    space = config.getColorSpace(name)
    if space is None:
        names = list(config.getColorSpaceNames())
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = "run `dfl-vfx colorspaces` to list them"
        if close:
            hint = f"did you mean {', '.join(repr(c) for c in close)}?"
        raise DflError(f"unknown colorspace {name!r} in the OCIO config; {hint}")
    return space.getName()


def plate_colorspace(
    option: str | None, metadata: Mapping[str, object] | None = None, config: ocio.Config | None = None
) -> str:
    """The plate's colourspace: the command-line option, else the file's ``oiio:ColorSpace``, else ACEScg.

    A file tag unknown to the config is ignored (OpenImageIO writes generic tags such as ``srgb_rec709_scene``
    that studio configs may not define); an unknown option is an error.
    """
    config = config or load_config()
    if option:
        return resolve_colorspace(option, config)
    tagged = (metadata or {}).get("oiio:ColorSpace")
    if isinstance(tagged, str) and tagged and config.getColorSpace(tagged) is not None:
        return config.getColorSpace(tagged).getName()
    return resolve_colorspace(DEFAULT_PLATE_SPACE, config)


class ColorTransform:
    """An RGB transform between two colourspaces of one config (CPU processor, float32)."""

    def __init__(self, src: str, dst: str, config: ocio.Config | None = None) -> None:
        self.config = config or load_config()
        self.src = resolve_colorspace(src, self.config)
        self.dst = resolve_colorspace(dst, self.config)
        self.identity = self.src == self.dst
        self._cpu = None if self.identity else self.config.getProcessor(self.src, self.dst).getDefaultCPUProcessor()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Return a transformed copy of a float (..., 3) array."""
        out = np.ascontiguousarray(rgb, dtype=np.float32).copy()
        if self._cpu is not None and out.size:
            self._cpu.applyRGB(out)
        return out


def unpremultiply(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGB / alpha where alpha > epsilon; pixels with (near) zero alpha are returned unchanged."""
    a = alpha[..., None]
    return np.divide(rgb, a, out=np.array(rgb, dtype=np.float32), where=a > ALPHA_EPSILON)


def premultiply(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGB * alpha, the inverse of :func:`unpremultiply` where alpha > epsilon."""
    a = alpha[..., None]
    return np.multiply(rgb, a, out=np.array(rgb, dtype=np.float32), where=a > ALPHA_EPSILON)


class WorkingSpace:
    """Converts between a plate's colourspace and the networks' working space, alpha-aware."""

    def __init__(
        self, plate_space: str = DEFAULT_PLATE_SPACE, working_space: str = WORKING_SPACE, config_src: str | None = None
    ) -> None:
        config = load_config(config_src)
        self.to_working = ColorTransform(plate_space, working_space, config)
        self.from_working = ColorTransform(working_space, plate_space, config)
        self.to_display = ColorTransform(plate_space, SRGB_SPACE, config)
        self.plate_space = self.to_working.src
        self.working_space = self.to_working.dst

    def rgba_to_working(self, rgb: np.ndarray, alpha: np.ndarray | None, premultiplied: bool = True) -> np.ndarray:
        """Unpremultiply (when the plate is premultiplied and has alpha), then transform RGB only."""
        if alpha is not None and premultiplied:
            rgb = unpremultiply(rgb, alpha)
        return self.to_working(rgb)

    def rgba_from_working(self, rgb: np.ndarray, alpha: np.ndarray | None, premultiplied: bool = True) -> np.ndarray:
        """Inverse of :meth:`rgba_to_working`: transform back, then re-premultiply by the untouched alpha."""
        out = self.from_working(rgb)
        if alpha is not None and premultiplied:
            out = premultiply(out, alpha)
        return out

    def display_uint8(self, rgb: np.ndarray) -> np.ndarray:
        """An sRGB-encoded uint8 view of plate RGB, for detectors and contact sheets (clipped, lossy)."""
        srgb = self.to_display(np.nan_to_num(rgb, nan=0.0, posinf=1.0, neginf=0.0))
        return (np.clip(srgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
