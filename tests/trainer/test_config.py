"""Training config: TOML + overrides, validation with named options, durations, presets."""

from pathlib import Path

import pytest

from dfl_vfx.errors import DflError
from trainer.config import TrainConfig, load_config, parse_duration, parse_set


def test_defaults_follow_deepfacelab() -> None:
    cfg = TrainConfig()
    assert (cfg.batch_size, cfg.lr, cfg.optimizer, cfg.save_every) == (8, 5e-5, "adabelief", 1500.0)
    assert cfg.random_warp and cfg.masked_training and cfg.random_dst_flip and not cfg.random_src_flip
    assert cfg.model.archi == "liae-ud" and cfg.model.resolution == 128


def test_toml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "shot.toml"
    path.write_text('src = "a"\ndst = "b"\nbatch_size = 4\nmax_time = "1h30m"\n[model]\narchi = "df-ud"\n'
                    'resolution = 192\n')
    cfg = load_config(path, parse_set(["batch_size=16", "model.ae_dims=512", "lr_dropout=y"]))
    assert cfg.batch_size == 16 and cfg.max_time == 5400.0 and cfg.lr_dropout is True
    assert cfg.model.archi == "df-ud" and cfg.model.resolution == 192 and cfg.model.ae_dims == 512


def test_preset_replaces_the_model() -> None:
    cfg = load_config(None, {"preset": "quick96"})
    assert (cfg.model.archi, cfg.model.resolution, cfg.model.ae_dims, cfg.model.mask_dims) == ("df-ud", 96, 128, 16)


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ({"batch_sise": 4}, "unknown option 'batch_sise'"),
        ({"batch_size": 0}, "batch_size 0 is out of range"),
        ({"optimizer": "sgd"}, "optimizer 'sgd' is unknown"),
        ({"gan_power": "lots"}, "gan_power needs a float"),
        ({"max_time": "soon"}, "max_time 'soon' is not a duration"),
        ({"model": {"resolution": 100}}, "resolution"),
        ({"true_face_power": 0.01, "model": {"archi": "liae-ud"}}, "true_face_power works with df models only"),
        ({"preset": "huge"}, "unknown preset 'huge'"),
    ],
)
def test_bad_values_name_the_option(overrides: dict, needle: str) -> None:
    with pytest.raises(DflError, match=needle.replace("(", r"\(")):
        load_config(None, overrides)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("batch_size = [")
    with pytest.raises(DflError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml", {})
    with pytest.raises(DflError, match="file not found"):
        load_config(tmp_path / "none.toml", {})


def test_durations() -> None:
    assert parse_duration("90", "x") == 90 and parse_duration("25m", "x") == 1500
    assert parse_duration("8h", "x") == 28800 and parse_duration("1h30m", "x") == 5400
    assert parse_duration(12.5, "x") == 12.5


def test_pretrain_forces_deepfacelab_settings() -> None:
    cfg = load_config(None, {"pretrain": True, "gan_power": 0.1})
    eff = cfg.effective()
    assert (eff.random_warp, eff.gan_power, eff.uniform_yaw, eff.random_src_flip) == (False, 0.0, True, True)
    assert cfg.gan_power == 0.1  # the saved config keeps what was asked


def test_round_trip() -> None:
    cfg = load_config(None, {"batch_size": 3, "model": {"archi": "df-udt", "resolution": 256}})
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_given_model_options_are_recorded_with_their_spelling(tmp_path: Path) -> None:
    path = tmp_path / "shot.toml"
    path.write_text('[model]\nresolution = 192\n')
    cfg = load_config(path, {"model": {"face_type": "wf", "ae_dims": 512}},
                      {"face_type": "--face-type", "ae_dims": "--set model.ae_dims"})
    assert cfg.model_given == {"resolution": f"resolution in {path}", "face_type": "--face-type",
                               "ae_dims": "--set model.ae_dims"}
    assert "model_given" not in cfg.to_dict()
    # nothing given: every model option is a default a resumed model may replace
    assert load_config(None, {"batch_size": 2}).model_given == {}


def test_a_preset_gives_the_network_but_not_the_face_type() -> None:
    cfg = load_config(None, {"preset": "quick96"}, {"preset": "--preset quick96"})
    assert set(cfg.model_given) == {"archi", "resolution", "ae_dims", "e_dims", "d_dims", "d_mask_dims"}
    assert set(cfg.model_given.values()) == {"--preset quick96"}


def test_true_face_waits_for_the_models_archi_when_it_was_not_given() -> None:
    cfg = load_config(None, {"true_face_power": 0.01})  # a resumed df model may be the one trained
    with pytest.raises(DflError, match="true_face_power works with df models only"):
        cfg.validate(model_final=True)  # a new model with the default liae archi
