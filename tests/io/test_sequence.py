"""Frame sequence specs resolve to the right files; gaps, ranges and bad specs behave."""

from pathlib import Path

import fileseq
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.io.sequence import (
    IMAGE_EXTENSIONS,
    FrameSequence,
    open_sequence,
    output_sequence,
    parse_frames,
)


def _touch_frames(directory: Path, name: str, frames, width: int, ext: str = "exr") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.{frame:0{width}d}.{ext}" for frame in frames]
    for path in paths:
        path.write_bytes(b"")
    return paths


@pytest.fixture
def plate(tmp_path: Path) -> Path:
    """plate.1001..1005.exr with 1003 missing."""
    _touch_frames(tmp_path / "plate", "plate", [1001, 1002, 1004, 1005], 4)
    return tmp_path / "plate"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1001-1005", [1001, 1002, 1003, 1004, 1005]),
        ("1001-1010x3", [1001, 1004, 1007, 1010]),
        ("1001,1005,1010-1012", [1001, 1005, 1010, 1011, 1012]),
        ("1001", [1001]),
        (" 7 ", [7]),
    ],
)
def test_parse_frames(spec, expected):
    assert parse_frames(spec) == expected


@pytest.mark.parametrize("spec", ["abc", "1001-", "", "1-3x0.5", "1.5"])
def test_parse_frames_rejects_bad_specs(spec):
    with pytest.raises(DflError, match=r"--frames .*e\.g\. --frames 1001-1100"):
        parse_frames(spec)


@pytest.mark.parametrize(
    ("spec", "upward"),
    [
        ("1010-1001", "1001-1010"),
        ("1010-1002x3", "1004-1010x3"),  # the frames 1010, 1007, 1004, written upwards
        ("1001,1020-1010", "1001,1010-1020"),
        ("-5--10", "-10--5"),
    ],
)
def test_descending_ranges_are_refused_with_the_upward_spelling(spec, upward):
    with pytest.raises(DflError) as err:
        parse_frames(spec)
    assert str(err.value) == (
        f"--frames {spec!r} counts down; frame ranges run from the first frame to the last: use --frames {upward}"
    )
    assert sorted(parse_frames(upward)) == sorted(int(frame) for frame in fileseq.FrameSet(spec))


def test_frame_lists_keep_the_order_written():
    assert parse_frames("1005,1001,1003") == [1005, 1001, 1003]
    assert parse_frames("-5-5") == list(range(-5, 6))


@pytest.mark.parametrize(
    ("name", "printf"),
    [
        ("plate.%04d.exr", "plate.%04d.exr"),
        ("plate.####.exr", "plate.%04d.exr"),
        ("plate.@@@@.exr", "plate.%04d.exr"),
        ("plate.$F4.exr", "plate.%04d.exr"),
        ("plate.#.exr", "plate.%d.exr"),  # one digit per '#': unpadded, which 4-digit frames match
    ],
)
def test_pattern_styles_resolve_frames_from_disk_with_gap(plate, name, printf):
    seq = open_sequence(str(plate / name))
    assert seq.pattern == str(plate / printf)
    assert seq.frames == [1001, 1002, 1003, 1004, 1005]
    assert (seq.first, seq.last, len(seq)) == (1001, 1005, 5)
    assert seq.missing() == [1003]
    assert seq.path(1004) == plate / "plate.1004.exr"
    assert seq.stem(1001) == "plate.1001"
    assert [p.exists() for p in seq.paths()] == [True, True, False, True, True]


def test_one_hash_means_no_padding(tmp_path):
    _touch_frames(tmp_path, "shot", [1, 2, 10], 1)
    seq = open_sequence(str(tmp_path / "shot.@.exr"))
    assert seq.pattern == str(tmp_path / "shot.%d.exr")
    assert seq.path(10) == tmp_path / "shot.10.exr"
    assert seq.missing() == list(range(3, 10))


def test_padding_is_strict_and_the_error_shows_what_is_on_disk(tmp_path):
    _touch_frames(tmp_path, "shot", [1, 2], 4)
    with pytest.raises(DflError, match=r"shot\.#\.exr: no files match .*4-digit padding"):
        open_sequence(str(tmp_path / "shot.#.exr"))
    assert open_sequence(str(tmp_path / "shot.####.exr")).path(2) == tmp_path / "shot.0002.exr"


def test_short_padding_keeps_zeros(tmp_path):
    _touch_frames(tmp_path, "render", [8, 9, 10], 3, ext="png")
    seq = open_sequence(str(tmp_path / "render.%03d.png"))
    assert seq.paths() == [tmp_path / f"render.{f:03d}.png" for f in (8, 9, 10)]
    assert seq.missing() == []


def test_explicit_frames_with_step(plate):
    seq = open_sequence(str(plate / "plate.####.exr"), frames="1001-1005x2")
    assert seq.frames == [1001, 1003, 1005]
    assert seq.missing() == [1003]


def test_range_form_in_spec(plate):
    seq = open_sequence(str(plate / "plate.1002-1004#.exr"))
    assert seq.frames == [1002, 1003, 1004]
    assert seq.path(1002) == plate / "plate.1002.exr"
    assert seq.missing() == [1003]


def test_frames_argument_overrides_range_in_spec(plate):
    assert open_sequence(str(plate / "plate.1001-1005@@@@.exr"), frames="1004").frames == [1004]


def test_directory_with_one_sequence(plate):
    (plate / "notes.txt").write_text("not an image")
    seq = open_sequence(str(plate))
    assert seq.pattern == str(plate / "plate.%04d.exr")
    assert seq.frames == [1001, 1002, 1003, 1004, 1005]
    assert seq.missing() == [1003]


def test_directory_with_several_sequences_lists_them(plate):
    _touch_frames(plate, "other", [1, 2], 4, ext="png")
    with pytest.raises(DflError, match=r"several image sequences \(other\..*, plate\..*\)"):
        open_sequence(str(plate))


def test_empty_directory(tmp_path):
    with pytest.raises(DflError, match="no image sequence inside"):
        open_sequence(str(tmp_path))


def test_single_still_without_number(tmp_path):
    still = tmp_path / "reference.png"
    still.write_bytes(b"")
    seq = open_sequence(str(still))
    assert seq == FrameSequence(pattern=str(still), frames=[0])
    assert seq.path(0) == still and seq.missing() == [] and seq.stem(0) == "reference"
    held = open_sequence(str(still), frames="1-3")
    assert held.paths() == [still] * 3 and held.missing() == []


def test_single_numbered_file_takes_its_frame(plate):
    seq = open_sequence(str(plate / "plate.1004.exr"))
    assert seq.frames == [1004]
    assert seq.pattern == str(plate / "plate.%04d.exr")


def test_no_files_found_names_the_pattern(plate):
    with pytest.raises(DflError, match=r"comp\.%04d\.exr: no files match"):
        open_sequence(str(plate / "comp.%04d.exr"))
    with pytest.raises(DflError, match=r"2001-2002 outside the plate .*plate\.%04d\.exr \(frames 1001-1005 on"):
        open_sequence(str(plate / "plate.%04d.exr"), frames="2001-2002")
    with pytest.raises(DflError, match="no such file"):
        open_sequence(str(plate / "missing.exr"))


@pytest.mark.parametrize("spec", ["plate.####.exr", "plate.1002-1004#.exr", ""])
def test_frames_reaching_outside_the_plate_are_refused_holes_inside_are_missing(plate, spec):
    """--frames 1001-1006 on a 1001-1005 plate used to give sequences whose extra frames every command handled its
    own way (a failed frame, a silent skip, a "missing" entry): now one refusal naming plate, range and asked."""
    with pytest.raises(DflError) as refused:
        open_sequence(str(plate / spec), frames="999-1001,1004-1006")
    assert str(refused.value) == (f"--frames 999-1001,1004-1006: frame(s) 999-1000,1006 outside the plate "
                                  f"{plate / spec} (frames 1001-1005 on disk); choose frames within 1001-1005")
    with pytest.raises(DflError, match=r"--frames 1006: frame\(s\) 1006 outside the plate"):
        open_sequence(str(plate / spec), frames="1006")
    inside = open_sequence(str(plate / spec), frames="1001-1005")
    assert inside.frames == [1001, 1002, 1003, 1004, 1005] and inside.missing() == [1003]  # a hole stays missing


def test_unsupported_extension(tmp_path):
    _touch_frames(tmp_path, "clip", [1, 2], 4, ext="mov")
    with pytest.raises(DflError, match=r"supported extensions: exr, png"):
        open_sequence(str(tmp_path / "clip.####.mov"))


def test_bad_frames_argument_names_frames(plate):
    with pytest.raises(DflError, match="--frames 'ten'"):
        open_sequence(str(plate / "plate.####.exr"), frames="ten")


def test_output_sequence_keeps_padding_and_frames(plate, tmp_path):
    like = open_sequence(str(plate))
    out_dir = tmp_path / "merged"
    into_dir = output_sequence(f"{out_dir}/", like)
    assert into_dir == FrameSequence(pattern=str(out_dir / "plate.%04d.exr"), frames=like.frames)
    plain = output_sequence(str(tmp_path / "comp"), like)
    assert plain.pattern == str(tmp_path / "comp.%04d.exr")
    assert output_sequence(str(tmp_path / "comp.png"), like).path(1001) == tmp_path / "comp.1001.png"
    explicit = output_sequence(str(tmp_path / "comp_v2.######.tif"), like)
    assert explicit.path(1005) == tmp_path / "comp_v2.001005.tif"
    assert not out_dir.exists()
    with pytest.raises(DflError, match="supported extensions"):
        output_sequence(str(tmp_path / "comp.mov"), like)


def test_extensions_constant():
    assert set(IMAGE_EXTENSIONS) == {"exr", "png", "jpg", "jpeg", "tif", "tiff", "dpx"}


def test_frame_lists_are_printed_in_the_syntax_frames_reads() -> None:
    from dfl_vfx.io.sequence import format_frames, parse_frames

    for frames, text in [([1001, 1002, 1003, 1004, 1010], "1001-1004,1010"), ([5], "5"), ([], ""),
                         (list(range(1001, 1100, 2)), "1001-1099x2"), ([1010, 1001, 1001, 1002], "1001-1002,1010")]:
        assert format_frames(frames) == text
        if frames:
            assert parse_frames(text) == sorted(set(frames))
