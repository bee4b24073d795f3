"""FaceType: reference table 1.2 (values, paddings, crop ratios, names) and CLI parsing."""

import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType


@pytest.mark.parametrize(
    ("face_type", "value", "padding", "crop_ratio", "remove_align", "up_shift"),
    [
        (FaceType.HALF, 0, 0.0, 1.000, False, 0.0),
        (FaceType.MID_FULL, 1, 0.0675, 1.191, False, 0.0),
        (FaceType.FULL, 2, 0.2109375, 1.597, False, 0.0),
        (FaceType.FULL_NO_ALIGN, 3, 0.2109375, 1.597, True, 0.0),
        (FaceType.WHOLE_FACE, 4, 0.40, 2.131, False, 0.07),
        (FaceType.HEAD, 10, 0.70, 2.980, False, 0.5),
        (FaceType.HEAD_NO_ALIGN, 20, 0.70, 2.980, True, 0.0),
    ],
)
def test_table(face_type, value, padding, crop_ratio, remove_align, up_shift):
    assert int(face_type) == value
    assert face_type.padding == padding
    assert face_type.crop_ratio == pytest.approx(crop_ratio, abs=1e-3)
    assert face_type.remove_align is remove_align
    assert face_type.up_shift == up_shift
    assert face_type.has_crop


def test_mark_only_has_no_crop():
    assert int(FaceType.MARK_ONLY) == 100
    assert not FaceType.MARK_ONLY.has_crop
    assert not FaceType.MARK_ONLY.remove_align
    with pytest.raises(DflError, match="mark_only"):
        _ = FaceType.MARK_ONLY.padding


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("half_face", FaceType.HALF),
        ("midfull_face", FaceType.MID_FULL),
        ("full_face", FaceType.FULL),
        ("full_face_no_align", FaceType.FULL_NO_ALIGN),
        ("whole_face", FaceType.WHOLE_FACE),
        ("head", FaceType.HEAD),
        ("head_no_align", FaceType.HEAD_NO_ALIGN),
        ("mark_only", FaceType.MARK_ONLY),
        ("h", FaceType.HALF),
        ("half", FaceType.HALF),
        ("mf", FaceType.MID_FULL),
        ("f", FaceType.FULL),
        ("full", FaceType.FULL),
        ("wf", FaceType.WHOLE_FACE),
        ("whole", FaceType.WHOLE_FACE),
        ("WF", FaceType.WHOLE_FACE),
        (" Whole_Face ", FaceType.WHOLE_FACE),
        ("whole-face", FaceType.WHOLE_FACE),
        ("HEAD", FaceType.HEAD),
        ("MID_FULL", FaceType.MID_FULL),
        ("FULL_NO_ALIGN", FaceType.FULL_NO_ALIGN),
        ("Mark_Only", FaceType.MARK_ONLY),
    ],
)
def test_parse(name, expected):
    assert FaceType.parse(name) is expected


def test_cli_names_round_trip():
    names = [member.cli_name for member in FaceType]
    assert names == [
        "half_face",
        "midfull_face",
        "full_face",
        "full_face_no_align",
        "whole_face",
        "head",
        "head_no_align",
        "mark_only",
    ]
    assert [FaceType.parse(name) for name in names] == list(FaceType)


@pytest.mark.parametrize("name", ["fulll", "", "face", "2", "whole face"])
def test_unknown_name_lists_the_choices(name):
    with pytest.raises(DflError) as error:
        FaceType.parse(name)
    message = str(error.value)
    assert "\n" not in message
    assert repr(name) in message
    for short in ("h,", "mf,", "f,", "wf,", "head", "whole_face", "half_face"):
        assert short in message
