"""ModelConfig: DFL defaults, presets, validation messages, dict round trip."""

import json

import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.models.config import PRESETS, ModelConfig, default_mask_dims, preset


def test_defaults_are_deepfacelab_saehd_defaults():
    cfg = ModelConfig().validate()
    assert (cfg.archi, cfg.resolution, cfg.face_type) == ("liae-ud", 128, "f")
    assert (cfg.ae_dims, cfg.e_dims, cfg.d_dims, cfg.d_mask_dims) == (256, 64, 64, 0)
    assert cfg.base == "liae"
    assert cfg.options == frozenset("ud")
    assert cfg.mask_dims == 22
    assert cfg.bottleneck_resolution == 4  # 128 / 32 with 'd'
    assert cfg.encoder_downscales == 4
    assert cfg.face_type_name == "full_face"
    assert PRESETS["saehd"] == cfg


@pytest.mark.parametrize(("d_dims", "mask_dims"), [(64, 22), (80, 26), (96, 32), (16, 6), (48, 16)])
def test_default_mask_dims_is_third_rounded_up_to_even(d_dims, mask_dims):
    assert default_mask_dims(d_dims) == mask_dims
    assert ModelConfig(d_dims=d_dims).mask_dims == mask_dims


def test_explicit_mask_dims_override_default():
    assert ModelConfig(d_mask_dims=32).mask_dims == 32


def test_quick96_preset():
    cfg = preset("quick96").validate()
    assert (cfg.archi, cfg.resolution, cfg.face_type) == ("df-ud", 96, "f")
    assert (cfg.ae_dims, cfg.e_dims, cfg.d_dims, cfg.mask_dims) == (128, 64, 64, 16)
    assert cfg.base == "df" and cfg.bottleneck_resolution == 3


def test_preset_returns_a_copy_and_rejects_unknown_names():
    cfg = preset("quick96")
    cfg.resolution = 128
    assert PRESETS["quick96"].resolution == 96
    with pytest.raises(DflError, match="quick97"):
        preset("quick97")


@pytest.mark.parametrize(
    ("archi", "resolution", "bottleneck", "downscales"),
    [("df", 224, 14, 4), ("liae-u", 160, 10, 4), ("df-udt", 256, 8, 5), ("liae-t", 256, 16, 5), ("DF-UDTC", 96, 3, 5)],
)
def test_archi_parsing_and_bottleneck(archi, resolution, bottleneck, downscales):
    cfg = ModelConfig(archi=archi, resolution=resolution).validate()
    assert cfg.bottleneck_resolution == bottleneck
    assert cfg.encoder_downscales == downscales


@pytest.mark.parametrize(
    ("changes", "named", "hint"),
    [
        ({"archi": "dfx-ud"}, "archi", "df or liae"),
        ({"archi": "df-uq"}, "archi", "'q'"),
        ({"archi": "liae-uu"}, "archi", "repeated"),
        ({"resolution": 48}, "resolution", "64 to 640"),
        ({"resolution": 656}, "resolution", "64 to 640"),
        ({"archi": "df", "resolution": 120}, "resolution", "112 or 128"),
        ({"archi": "liae-ud", "resolution": 240}, "resolution", "224 or 256"),
        ({"archi": "df-ud", "resolution": 640 - 16}, "resolution", "608 or 640"),
        ({"ae_dims": 16}, "ae_dims", "32 to 1024"),
        ({"ae_dims": 2048}, "ae_dims", "32 to 1024"),
        ({"e_dims": 65}, "e_dims", "even"),
        ({"e_dims": 512}, "e_dims", "16 to 256"),
        ({"d_dims": 8}, "d_dims", "16 to 256"),
        ({"d_dims": 63}, "d_dims", "even"),
        ({"d_mask_dims": 10}, "d_mask_dims", "16 to 256"),
        ({"d_mask_dims": 23}, "d_mask_dims", "even"),
        ({"face_type": "xx"}, "face_type", "h, mf, f, wf, head"),
        ({"face_type": "full_face_no_align"}, "face_type", "h, mf, f, wf, head"),
        ({"face_type": "mark_only"}, "face_type", "h, mf, f, wf, head"),
    ],
)
def test_validation_names_the_bad_option(changes, named, hint):
    with pytest.raises(DflError) as err:
        ModelConfig(**changes).validate()
    message = str(err.value)
    assert message.startswith(named)
    assert hint in message
    assert "\n" not in message


def test_resolution_multiple_of_16_is_enough_without_d():
    assert ModelConfig(archi="liae-u", resolution=240).validate().bottleneck_resolution == 15


@pytest.mark.parametrize("face_type", ["h", "mf", "f", "wf", "head", "whole_face"])
def test_trainable_face_types(face_type):
    ModelConfig(face_type=face_type).validate()


def test_dict_round_trip_through_json():
    cfg = ModelConfig(archi="df-udt", resolution=256, face_type="wf", ae_dims=512, e_dims=80, d_dims=96, d_mask_dims=32)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["archi"] == "df-udt" and data["d_mask_dims"] == 32
    assert ModelConfig.from_dict(data) == cfg


def test_from_dict_fills_defaults_and_validates():
    assert ModelConfig.from_dict({"resolution": 256}) == ModelConfig(resolution=256)
    with pytest.raises(DflError, match="^resolution 250"):
        ModelConfig.from_dict({"resolution": 250})


def test_from_dict_unknown_key_is_named():
    with pytest.raises(DflError, match="unknown key 'ae_dim'"):
        ModelConfig.from_dict({"ae_dim": 256})


@pytest.mark.parametrize(("key", "value"), [("resolution", "128"), ("ae_dims", 256.0), ("archi", 3), ("e_dims", True)])
def test_from_dict_wrong_type_is_named(key, value):
    with pytest.raises(DflError, match=f"key '{key}'"):
        ModelConfig.from_dict({key: value})
