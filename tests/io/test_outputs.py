"""Output folders are checked before any work: a file in the way or a folder that cannot be written."""

from pathlib import Path

import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.io.outputs import check_output_dir


def test_existing_and_new_folders_pass(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path, "--out") == tmp_path
    new = tmp_path / "a" / "b"
    assert check_output_dir(new, "--out") == new
    assert not new.exists()  # checked, not made
    check_output_dir(new, "--out", create=True)
    assert new.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # the write probe left nothing


def test_a_file_in_place_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "swap").write_text("not a folder")
    with pytest.raises(DflError, match=r"^--out .*swap is a file, not a folder; give a folder path"):
        check_output_dir(tmp_path / "swap", "--out")


def test_a_file_above_the_folder(tmp_path: Path) -> None:
    (tmp_path / "model").write_text("x")
    with pytest.raises(DflError, match=r"^--model-dir .*model is a file, so the folder cannot be made"):
        check_output_dir(tmp_path / "model" / "run1", "--model-dir")


def test_unwritable_folder(read_only_dir: Path) -> None:
    for path in (read_only_dir, read_only_dir / "new" / "deeper"):
        with pytest.raises(DflError) as info:
            check_output_dir(path, "--out")
        message = str(info.value)
        assert message.startswith(f"--out {path}: cannot write in {read_only_dir} (Permission denied)")
        assert message.endswith("choose a folder you can write to or fix its permissions")
        assert "\n" not in message
    assert list(read_only_dir.iterdir()) == []
