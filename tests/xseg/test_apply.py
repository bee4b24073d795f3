"""`dfl-vfx xseg apply`: masks stored beside the faces (binary or soft), faces untouched, load checks."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from dfl_vfx.cli.main import main
from dfl_vfx.errors import DflError
from dfl_vfx.faceset import Faceset
from dfl_vfx.models.checkpoint import load_checkpoint, save_checkpoint
from dfl_vfx.xseg.apply import apply_xseg, finish_mask, read_xseg_mask, xseg_mask_path
from dfl_vfx.xseg.labels import label_mask
from dfl_vfx.xseg.model import load_xseg
from dfl_vfx.xseg.train import iou


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))}


def test_apply_writes_binary_masks_and_keeps_faces(labelled_faceset: Path, xseg_model: Path, tmp_path: Path,
                                                   faceset_builder) -> None:
    faceset = faceset_builder(tmp_path / "faces", 12, 12)  # the model saw faces 0..7 (unlabelled there: 8..11)
    before = _digest(faceset.root)
    report = apply_xseg(faceset.root, xseg_model, progress=False)
    assert report.faces == 12 and report.folder == faceset.root / "xseg"
    assert _digest(faceset.root) == before  # faces and their metadata untouched
    scores = []
    for record in faceset.records():
        mask = read_xseg_mask(faceset, record)
        assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0.0, 1.0}
        scores.append(iou(mask, label_mask(faceset, record)))
    # 60 iterations of the reduced network on 8 synthetic faces already find the ellipse, on unseen faces too
    assert min(scores) > 0.85, scores
    assert 0.2 < report.mean_coverage < 0.4


def test_soft_masks_zero_below_a_tenth() -> None:
    probs = np.array([0.05, 0.1, 0.4, 0.6], np.float32)
    np.testing.assert_array_equal(finish_mask(probs, soft=False), [0, 0, 0, 1])
    np.testing.assert_allclose(finish_mask(probs, soft=True), [0, 0.1, 0.4, 0.6])


def test_cli_apply_soft_and_remove(xseg_model: Path, tmp_path: Path, faceset_builder,
                                   capsys: pytest.CaptureFixture) -> None:
    faceset = faceset_builder(tmp_path / "faces", 3, 0)
    assert main(["xseg", "apply", str(faceset.root), "--model", str(xseg_model), "--soft", "--no-progress"]) == 0
    assert "3 masks written" in capsys.readouterr().out
    mask = read_xseg_mask(faceset, faceset.records()[0])
    assert len(np.unique(np.round(mask * 255))) > 2  # soft
    assert main(["xseg", "remove", str(faceset.root)]) == 0
    assert read_xseg_mask(faceset, faceset.records()[0]) is None


def test_wrong_face_type_and_small_faces_are_refused(xseg_model: Path, tmp_path: Path, faceset_builder) -> None:
    faceset = faceset_builder(tmp_path / "faces", 1, 0)
    info = faceset.root / "faceset.json"
    info.write_text(info.read_text().replace("whole_face", "full_face"))
    with pytest.raises(DflError, match="holds full_face faces, the XSeg model .* whole_face"):
        apply_xseg(faceset.root, xseg_model)
    small = faceset_builder(tmp_path / "small", 1, 0, size=32)
    with pytest.raises(DflError, match="32 px faces, smaller than the XSeg model's 64 px"):
        apply_xseg(small.root, xseg_model)
    assert not xseg_mask_path(Faceset.open(small.root), "plate.1001_0.png").exists()


def test_model_with_weights_of_another_resolution_is_refused(xseg_model: Path, tmp_path: Path) -> None:
    state = load_checkpoint(xseg_model)
    state["config"]["xseg"]["resolution"] = 128  # weights of a 64 px bottleneck under a 128 px header
    state.pop("format"), state.pop("version")
    save_checkpoint(tmp_path / "bad", state)
    with pytest.raises(DflError, match="do not fit a 128 px, base 8 XSeg network") as info:
        load_xseg(tmp_path / "bad")
    assert "\n" not in str(info.value)
    save_checkpoint(tmp_path / "swap", {"config": {"model": {}}, "model": {"w": torch.zeros(1)}})
    with pytest.raises(DflError, match="not an XSeg model"):
        load_xseg(tmp_path / "swap")


def test_trainer_targets_are_xseg_masks_when_applied(tmp_path: Path, faceset_builder) -> None:
    from dfl_vfx.face.masks import hull_mask
    from dfl_vfx.io.image import Image, write_image
    from trainer.data import load_samples

    faceset = faceset_builder(tmp_path / "faces", 2, 0)
    square = np.zeros((64, 64), np.float32)
    square[10:30, 12:50] = 1.0
    first, second = faceset.records()
    write_image(xseg_mask_path(faceset, first), Image.from_array(square[..., None], fmt="uint8"))
    samples = load_samples(faceset.root, 32, "wf", "dst")
    half = square.reshape(32, 2, 32, 2).mean(axis=(1, 3))  # INTER_AREA to the model's 32 px
    np.testing.assert_allclose(samples.masks[0, 0].float().numpy(), half, atol=1e-3)
    hull = hull_mask((32, 32), (second.meta.landmarks_array() + 0.5) * 0.5 - 0.5)
    np.testing.assert_allclose(samples.masks[1, 0].float().numpy(), hull, atol=1e-3)
