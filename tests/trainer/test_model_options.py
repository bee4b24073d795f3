"""Which model a run trains: a resumed model's own options, a new model's face type from its facesets, checks."""

import json
from pathlib import Path

import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.faceset.faceset import FacesetInfo
from dfl_vfx.models.config import ModelConfig
from trainer.config import load_config
from trainer.model_options import FacesetSummary, resolve_model_options

TINY = {"archi": "df-ud", "resolution": 64, "ae_dims": 32, "e_dims": 16, "d_dims": 16, "d_mask_dims": 16}


def _facesets(src_type: str = "whole_face", dst_type: str = "whole_face", size: int = 64,
              colorspace: str = "ACEScct") -> list[FacesetSummary]:
    return [FacesetSummary("src", Path("shot/src_faces"), FacesetInfo(src_type, size, colorspace)),
            FacesetSummary("dst", Path("shot/dst_faces"), FacesetInfo(dst_type, size, colorspace))]


def _state(model: dict) -> dict:
    return {"config": {"model": model}}


def test_a_new_model_takes_the_face_type_of_its_facesets(tmp_path: Path) -> None:
    cfg = load_config(None, {"model_dir": str(tmp_path / "m"), "model": dict(TINY)})
    model, existing = resolve_model_options(cfg, _facesets(), None)
    assert model == ModelConfig(**TINY, face_type="wf") and not existing


def test_facesets_of_two_face_types_are_refused_when_none_is_given(tmp_path: Path) -> None:
    cfg = load_config(None, {"model_dir": str(tmp_path / "m"), "model": dict(TINY)})
    with pytest.raises(DflError) as caught:
        resolve_model_options(cfg, _facesets("whole_face", "full_face"), None)
    assert str(caught.value) == (
        "the src faceset shot/src_faces holds whole_face faces but the dst faceset shot/dst_faces holds full_face "
        "faces; extract both with the same --face-type (the model's face type comes from them)")


def test_a_given_face_type_must_match_the_facesets(tmp_path: Path) -> None:
    cfg = load_config(None, {"model_dir": str(tmp_path / "m"), "model": dict(TINY, face_type="f")},
                      {"face_type": "--face-type"})
    with pytest.raises(DflError, match=r"src faceset shot/src_faces holds whole_face faces but the model is "
                                       r"full_face; extract it with --face-type f, or drop --face-type to train on "
                                       r"the facesets' whole_face$"):
        resolve_model_options(cfg, _facesets(), None)


def test_facesets_smaller_than_the_default_resolution_name_the_resolution_that_fits(tmp_path: Path) -> None:
    cfg = load_config(None, {"model_dir": str(tmp_path / "m")})  # default liae-ud, 128 px
    with pytest.raises(DflError, match=r"has 80 px faces, smaller than the model's 128 px; extract it with --size "
                                       r"128 or more, or give --resolution 64 \(the default is 128\)$"):
        resolve_model_options(cfg, _facesets(size=80), None)
    cfg = load_config(None, {"model_dir": str(tmp_path / "m"), "model": {"archi": "df-u", "resolution": 96}},
                      {"resolution": "--resolution"})
    with pytest.raises(DflError, match=r"smaller than the model's 96 px; extract it with --size 96 or more, or "
                                       r"give --resolution 80$"):
        resolve_model_options(cfg, _facesets(size=80), None)


def test_facesets_outside_the_working_space_are_refused(tmp_path: Path) -> None:
    cfg = load_config(None, {"model_dir": str(tmp_path / "m"), "model": dict(TINY)})
    with pytest.raises(DflError, match=r"src faceset shot/src_faces holds faces in 'ACEScg', but models are "
                                       r"trained, previewed and exported in the working space ACEScct"):
        resolve_model_options(cfg, _facesets(colorspace="ACEScg"), None)


def test_a_resumed_model_keeps_its_options_and_refuses_contradicting_given_ones(tmp_path: Path) -> None:
    stored = dict(TINY, face_type="wf", d_dims=48, d_mask_dims=0)  # 0: the default mask width, 16 for d 48
    cfg = load_config(None, {"model_dir": str(tmp_path / "m")})  # defaults only: liae-ud 128 f
    model, existing = resolve_model_options(cfg, _facesets(), _state(stored))
    assert model == ModelConfig(**stored) and existing
    agreeing = load_config(None, {"model_dir": str(tmp_path / "m"), "model": {
        "face_type": "whole_face", "archi": "DF-UD", "resolution": 64, "d_mask_dims": 16}})
    assert resolve_model_options(agreeing, _facesets(), _state(stored))[0] == ModelConfig(**stored)
    contradicting = load_config(None, {"model_dir": str(tmp_path / "m"), "model": {"resolution": 128}},
                                {"resolution": "--resolution"})
    with pytest.raises(DflError) as caught:
        resolve_model_options(contradicting, _facesets(size=128), _state(stored))
    assert str(caught.value) == (
        f"--resolution asks for resolution 128, but the model in {tmp_path / 'm'} has resolution 64 (its "
        "checkpoint); drop --resolution to resume with the model's own options, or give another --model-dir for a "
        "new model")


def test_a_preset_contradicting_a_resumed_model_is_named(tmp_path: Path) -> None:
    cfg = load_config(None, {"model_dir": str(tmp_path / "m"), "preset": "quick96"}, {"preset": "--preset quick96"})
    with pytest.raises(DflError, match=r"^--preset quick96 asks for resolution 96, but the model .* has resolution "
                                       r"64 .*; drop --preset quick96 to resume"):
        resolve_model_options(cfg, _facesets(size=128), _state(dict(TINY, face_type="wf")))


def test_a_folder_with_only_config_json_keeps_the_options_it_was_started_with(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({"model": dict(TINY, face_type="wf")}))
    cfg = load_config(None, {"model_dir": str(tmp_path / "m"), "model": {"face_type": "f"}},
                      {"face_type": "--face-type"})
    with pytest.raises(DflError, match=r"has face_type wf \(whole_face\) \(its config.json\)"):
        resolve_model_options(cfg, _facesets(), None)
    (tmp_path / "m" / "config.json").write_text("{not json")  # a damaged record of a run that saved nothing
    model, existing = resolve_model_options(cfg, _facesets("full_face", "full_face", size=128), None)
    assert model.face_type == "f" and not existing
