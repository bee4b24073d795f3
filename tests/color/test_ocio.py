"""OpenColorIO: config choice, colourspace resolution, exact working-space round trips, alpha handling."""

import numpy as np
import pytest

from dfl_vfx.color import ocio as color
from dfl_vfx.errors import DflError


def test_builtin_config_is_pinned_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("OCIO", raising=False)
    assert color.config_source() == "ocio://studio-config-v5.0.0_aces-v2.1_ocio-v2.6"
    monkeypatch.setenv("OCIO", "ocio://cg-config-v5.0.0_aces-v2.1_ocio-v2.6")
    assert color.config_source() == "ocio://cg-config-v5.0.0_aces-v2.1_ocio-v2.6"
    assert color.config_source("explicit.ocio") == "explicit.ocio"
    cfg = color.load_config()
    assert cfg.getColorSpace("ACEScct") is not None


def test_bad_config_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DflError, match="cannot be loaded"):
        color.load_config(str(tmp_path / "missing.ocio"))


def test_resolve_names_roles_and_typos() -> None:
    assert color.resolve_colorspace("ACEScg") == "ACEScg"
    assert color.resolve_colorspace("scene_linear") == "ACEScg"  # a role
    assert color.resolve_colorspace("compositing_log") == "ACEScct"
    with pytest.raises(DflError, match="unknown colorspace 'ACEScgg'.*did you mean 'ACEScg'"):
        color.resolve_colorspace("ACEScgg")


def test_plate_colorspace_priority() -> None:
    assert color.plate_colorspace("ACEScct", {"oiio:ColorSpace": "ACEScg"}) == "ACEScct"
    assert color.plate_colorspace(None, {"oiio:ColorSpace": "Linear Rec.709 (sRGB)"}) == "Linear Rec.709 (sRGB)"
    assert color.plate_colorspace(None, {"oiio:ColorSpace": "srgb_rec709_scene"}) == color.SRGB_SPACE  # alias
    assert color.plate_colorspace(None, {"oiio:ColorSpace": "mystery_space"}) == "ACEScg"  # unknown tag
    assert color.plate_colorspace(None, {}) == "ACEScg"
    with pytest.raises(DflError):
        color.plate_colorspace("NotASpace", {})


def test_working_space_round_trip_below_1e4_relative() -> None:
    ws = color.WorkingSpace("ACEScg")
    v = np.geomspace(1e-4, 1000.0, 20000).astype(np.float32)
    v = np.concatenate([-v[v <= 0.01], v])  # -0.01 .. 1000
    rgb = np.stack([v, v[::-1], np.roll(v, 7)], axis=1)
    back = ws.from_working(ws.to_working(rgb))
    rel = np.abs(back - rgb) / np.abs(rgb)
    assert rel.max() < 1e-4


def test_acescct_values_match_the_published_curve() -> None:
    ws = color.WorkingSpace("ACEScg")
    lin = np.array([[-0.01, 0.0, 0.18], [1.0, 16.0, 100.0]], np.float32)
    expected = np.array([[-0.0325, 0.0729, 0.4136], [0.5548, 0.7831, 0.934]], np.float32)
    np.testing.assert_allclose(ws.to_working(lin), expected, atol=2e-4)
    assert ws.to_working(np.array([[1000.0] * 3], np.float32)).max() > 1.0  # nothing clipped


def test_alpha_is_never_colour_transformed_and_premult_round_trips() -> None:
    ws = color.WorkingSpace("ACEScg")
    rng = np.random.default_rng(0)
    straight = rng.uniform(0, 20, (16, 16, 3)).astype(np.float32)
    alpha = rng.uniform(0, 1, (16, 16)).astype(np.float32)
    alpha[0, :4] = 0.0
    premult = straight * alpha[..., None]
    work = ws.rgba_to_working(premult, alpha)
    # working values are of the unpremultiplied colour
    np.testing.assert_allclose(work[4:], ws.to_working(straight)[4:], rtol=1e-4, atol=1e-5)
    back = ws.rgba_from_working(work, alpha)
    np.testing.assert_allclose(back, premult, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(back[0, :4], premult[0, :4])  # zero alpha: left as it was


def test_display_uint8_handles_nan_inf_and_highlights() -> None:
    ws = color.WorkingSpace("ACEScg")
    rgb = np.array([[[np.nan, np.inf, -np.inf], [0.18, 0.18, 0.18], [50.0, 50.0, 50.0]]], np.float32)
    out = ws.display_uint8(rgb)
    assert out.dtype == np.uint8
    assert out[0, 2].tolist() == [255, 255, 255]
    assert 100 < out[0, 1, 0] < 130  # 18% grey is about 118 in sRGB
