"""SAEHD-class model configuration: archi string, resolution, face type and channel widths, with validation.

Defaults are DeepFaceLab's SAEHD defaults (reference 4.1). One deliberate difference: DeepFaceLab silently rounds
the resolution to a multiple of 16 (32 when the archi has the ``d`` letter); ``ModelConfig.validate`` refuses such a
resolution instead and names the nearest valid values, so a model is never trained at a size the user did not ask for.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType

ARCHI_BASES = ("df", "liae")
ARCHI_LETTERS = frozenset("udtc")
MODEL_FACE_TYPES = (FaceType.HALF, FaceType.MID_FULL, FaceType.FULL, FaceType.WHOLE_FACE, FaceType.HEAD)

RESOLUTION_RANGE = (64, 640)
AE_DIMS_RANGE = (32, 1024)
CHANNEL_DIMS_RANGE = (16, 256)


def default_mask_dims(d_dims: int) -> int:
    """DeepFaceLab's default mask-decoder width: ``d_dims // 3`` rounded up to an even number (64 -> 22)."""
    third = d_dims // 3
    return third + (third % 2)


@dataclass
class ModelConfig:
    """Network shape of an SAEHD-class model; ``d_mask_dims == 0`` means DeepFaceLab's default (see ``mask_dims``)."""

    archi: str = "liae-ud"
    resolution: int = 128
    face_type: str = "f"
    ae_dims: int = 256
    e_dims: int = 64
    d_dims: int = 64
    d_mask_dims: int = 0

    def _split_archi(self) -> tuple[str, str]:
        base, _, letters = self.archi.strip().lower().partition("-")
        return base, letters

    @property
    def base(self) -> str:
        """Routing family: ``'df'`` (shared inter, two decoders) or ``'liae'`` (two inters, one decoder)."""
        return self._split_archi()[0]

    @property
    def options(self) -> frozenset[str]:
        """Archi letters after the dash, e.g. ``{'u', 'd'}`` for ``liae-ud``."""
        return frozenset(self._split_archi()[1])

    @property
    def mask_dims(self) -> int:
        """Resolved mask-decoder width: ``d_mask_dims`` when given, else DeepFaceLab's default."""
        return self.d_mask_dims or default_mask_dims(self.d_dims)

    @property
    def bottleneck_resolution(self) -> int:
        """Side of the dense bottleneck grid (inter's reshape): res/32 with ``d``, else res/16 (``t`` or not)."""
        return self.resolution // (32 if "d" in self.options else 16)

    @property
    def encoder_downscales(self) -> int:
        """Stride-2 convolutions in the encoder: 5 with ``t``, else 4."""
        return 5 if "t" in self.options else 4

    @property
    def face_type_name(self) -> str:
        """CLI name of the face type, e.g. ``full_face``."""
        return FaceType.parse(self.face_type).cli_name

    def validate(self) -> ModelConfig:
        """Raise ``DflError`` naming the first bad option; return ``self`` so calls can be chained."""
        self._validate_archi()
        self._validate_resolution()
        _check_range("ae_dims", self.ae_dims, AE_DIMS_RANGE, even=False)
        _check_range("e_dims", self.e_dims, CHANNEL_DIMS_RANGE, even=True)
        _check_range("d_dims", self.d_dims, CHANNEL_DIMS_RANGE, even=True)
        if self.d_mask_dims != 0:
            _check_range("d_mask_dims", self.d_mask_dims, CHANNEL_DIMS_RANGE, even=True, zero_ok=True)
        self._validate_face_type()
        return self

    def _validate_face_type(self) -> None:
        hint = "use one of h, mf, f, wf, head"
        if not isinstance(self.face_type, str):
            raise DflError(f"face_type {self.face_type!r} must be a string: {hint}")
        try:
            face_type = FaceType.parse(self.face_type)
        except DflError:
            raise DflError(f"face_type {self.face_type!r} is unknown: {hint}") from None
        if face_type not in MODEL_FACE_TYPES:
            raise DflError(f"face_type {self.face_type!r} cannot be trained: {hint}")

    def _validate_archi(self) -> None:
        if not isinstance(self.archi, str):
            raise DflError(f"archi {self.archi!r} must be a string such as 'liae-ud'")
        base, letters = self._split_archi()
        if base not in ARCHI_BASES:
            raise DflError(f"archi {self.archi!r}: unknown base {base!r}; use df or liae, e.g. 'liae-ud'")
        unknown = sorted(set(letters) - ARCHI_LETTERS)
        if unknown:
            raise DflError(f"archi {self.archi!r}: unknown letter(s) {''.join(unknown)!r}; letters are u, d, t, c")
        if len(set(letters)) != len(letters):
            raise DflError(f"archi {self.archi!r}: a letter is repeated; give each of u, d, t, c at most once")

    def _validate_resolution(self) -> None:
        res = self.resolution
        low, high = RESOLUTION_RANGE
        if not _is_int(res) or not low <= res <= high:
            raise DflError(f"resolution {res!r} is out of range: use a multiple of 16 from {low} to {high}")
        multiple = 32 if "d" in self.options else 16
        if res % multiple:
            below, above = res // multiple * multiple, (res // multiple + 1) * multiple
            choices = " or ".join(str(r) for r in (below, above) if low <= r <= high)
            reason = f" (archi {self.archi!r} has 'd')" if multiple == 32 else ""
            raise DflError(f"resolution {res} must be a multiple of {multiple}{reason}: use {choices}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of the fields (``d_mask_dims`` stays 0 when it means the default)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build and validate a config from ``to_dict`` output; missing keys take defaults, unknown keys raise."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in data.items():
            if key not in fields:
                raise DflError(f"model config has unknown key {key!r}; known keys: {', '.join(fields)}")
            expected = str if fields[key].type == "str" else int
            if not (isinstance(value, str) if expected is str else _is_int(value)):
                raise DflError(f"model config key {key!r} must be {expected.__name__}, got {value!r}")
        return cls(**data).validate()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(name: str, value: object, bounds: tuple[int, int], even: bool, zero_ok: bool = False) -> None:
    low, high = bounds
    parity = " even" if even else ""
    hint = " (or 0 for the default)" if zero_ok else ""
    if not _is_int(value) or not low <= value <= high or (even and value % 2):
        raise DflError(f"{name} {value!r} is invalid: use an{parity} integer from {low} to {high}{hint}")


PRESETS: dict[str, ModelConfig] = {
    "saehd": ModelConfig(),
    "quick96": ModelConfig(
        archi="df-ud", resolution=96, face_type="f", ae_dims=128, e_dims=64, d_dims=64, d_mask_dims=16
    ),
}


def preset(name: str) -> ModelConfig:
    """A fresh copy of a named preset (``PRESETS`` itself should be treated as read-only)."""
    if name not in PRESETS:
        raise DflError(f"unknown model preset {name!r}: use one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name])
