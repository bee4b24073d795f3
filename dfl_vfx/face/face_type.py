"""Face types: the crop families of DeepFaceLab (padding, alignment, up-shift) and their CLI names."""

from __future__ import annotations

import enum
import math

from dfl_vfx.errors import DflError

_PADDING: dict[int, float] = {
    0: 0.0,  # HALF
    1: 0.0675,  # MID_FULL
    2: 0.2109375,  # FULL
    3: 0.2109375,  # FULL_NO_ALIGN
    4: 0.40,  # WHOLE_FACE
    10: 0.70,  # HEAD
    20: 0.70,  # HEAD_NO_ALIGN
}

_CLI_NAME: dict[int, str] = {
    0: "half_face",
    1: "midfull_face",
    2: "full_face",
    3: "full_face_no_align",
    4: "whole_face",
    10: "head",
    20: "head_no_align",
    100: "mark_only",
}

_SHORT_NAMES: dict[str, int] = {
    "h": 0,
    "half": 0,
    "mf": 1,
    "f": 2,
    "full": 2,
    "wf": 4,
    "whole": 4,
    "head": 10,
}


class FaceType(enum.IntEnum):
    """DeepFaceLab face types; the integer values are the ones stored in DFL aligned-face metadata."""

    HALF = 0
    MID_FULL = 1
    FULL = 2
    FULL_NO_ALIGN = 3
    WHOLE_FACE = 4
    HEAD = 10
    HEAD_NO_ALIGN = 20
    MARK_ONLY = 100

    @property
    def has_crop(self) -> bool:
        """False only for MARK_ONLY, which records landmarks without producing an aligned image."""
        return self is not FaceType.MARK_ONLY

    @property
    def padding(self) -> float:
        """Extra crop around the template square (reference table 1.2); MARK_ONLY has none and raises."""
        if not self.has_crop:
            raise DflError("face type mark_only has no crop; pick half_face, full_face, whole_face or head")
        return _PADDING[int(self)]

    @property
    def crop_ratio(self) -> float:
        """Side of the crop divided by the side of the template square: ``1 + 2*sqrt(2)*padding``."""
        return 1.0 + 2.0 * math.sqrt(2.0) * self.padding

    @property
    def remove_align(self) -> bool:
        """True for the *_NO_ALIGN types: the crop is an axis-aligned square (no roll correction)."""
        return self in (FaceType.FULL_NO_ALIGN, FaceType.HEAD_NO_ALIGN)

    @property
    def up_shift(self) -> float:
        """Upward move of the crop centre in template sides: 0.07 for WHOLE_FACE, 0.5 for HEAD, else 0.

        HEAD_NO_ALIGN gets no shift, as in the reference (table 1.2, step 1.3.4 applies to HEAD only).
        """
        if self is FaceType.WHOLE_FACE:
            return 0.07
        if self is FaceType.HEAD:
            return 0.5
        return 0.0

    @property
    def cli_name(self) -> str:
        """The long name used on the command line and in reports, e.g. ``whole_face``."""
        return _CLI_NAME[int(self)]

    @classmethod
    def parse(cls, name: str) -> FaceType:
        """Parse a CLI name, a short form (h, half, mf, f, full, wf, whole, head) or a member name."""
        key = name.strip().lower().replace("-", "_")
        if key in _SHORT_NAMES:
            return cls(_SHORT_NAMES[key])
        for member in cls:
            if key in (member.cli_name, member.name.lower()):
                return member
        long_names = ", ".join(_CLI_NAME.values())
        raise DflError(f"unknown face type {name!r}: use one of h, mf, f, wf, head (or {long_names})")
