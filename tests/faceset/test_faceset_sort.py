"""Faceset sorting: each key orders faces with known properties, renames are safe and never stack prefixes."""

import cv2
import numpy as np
import pytest
import skimage.data

from dfl_vfx.errors import DflError
from dfl_vfx.faceset.faceset import Faceset
from dfl_vfx.faceset.sort import (
    SORT_KEYS,
    _standardised,
    histogram_correlation,
    mean_hue,
    rgb_histograms,
    sort_faceset,
)

SAME_PERSON = 0.6  # dlib's published identity threshold


def _faceset(root, kit, faces: dict[str, np.ndarray], metas: dict | None = None) -> Faceset:
    """A faceset holding sRGB images under names ``{stem}_0.png`` (source ``{stem}.exr``)."""
    faceset = Faceset.create(root, face_type="wf", size=kit.SIZE)
    for stem, srgb in faces.items():
        meta = (metas or {}).get(stem) or kit.make_meta(source_filename=f"{stem}.exr", source_frame=None)
        faceset.add(f"{stem}_0.png", kit.srgb_to_working(srgb), meta)
    return faceset


def _names(faceset: Faceset) -> list[str]:
    return sorted(p.name for p in faceset.root.glob("*.png"))


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigma) if sigma else image


def test_registry_lists_every_key():
    assert list(SORT_KEYS) == ["blur", "yaw", "pitch", "hist", "brightness", "hue", "face"]


def test_blur_sharpest_first_and_resorting_does_not_stack_prefixes(tmp_path, kit):
    sharp = kit.astronaut_crop()
    sigmas = {"a": 1.6, "b": 0.0, "c": 3.2, "d": 0.8}
    faceset = _faceset(tmp_path, kit, {stem: _blur(sharp, s) for stem, s in sigmas.items()})

    rows = sort_faceset(faceset, "blur")

    assert [(old, new) for old, new, _ in rows] == [
        ("b_0.png", "00000_b_0.png"),
        ("d_0.png", "00001_d_0.png"),
        ("a_0.png", "00002_a_0.png"),
        ("c_0.png", "00003_c_0.png"),
    ]
    keys = [key for _, _, key in rows]
    assert keys == sorted(keys, reverse=True) and keys[-1] > 0
    assert keys[0] > 4 * keys[-1]  # sigma 3.2 removes most of the Laplacian energy
    assert _names(faceset) == ["00000_b_0.png", "00001_d_0.png", "00002_a_0.png", "00003_c_0.png"]
    assert [r.meta.source_filename for r in faceset.records()] == ["b.exr", "d.exr", "a.exr", "c.exr"]

    again = sort_faceset(faceset, "blur")
    assert [(old, new) for old, new, _ in again] == [(new, new) for _, new, _ in rows]
    assert _names(faceset) == ["00000_b_0.png", "00001_d_0.png", "00002_a_0.png", "00003_c_0.png"]


def test_brightness_brightest_first(tmp_path, kit):
    base = kit.astronaut_crop()
    gains = {"a": 0.7, "b": 0.5, "c": 1.0, "d": 0.85}
    faceset = _faceset(tmp_path, kit, {stem: base * g for stem, g in gains.items()})
    rows = sort_faceset(faceset, "brightness")
    assert [new for _, new, _ in rows] == ["00000_c_0.png", "00001_d_0.png", "00002_a_0.png", "00003_b_0.png"]
    keys = [key for _, _, key in rows]
    assert keys == sorted(keys, reverse=True)
    # HSV value scales with the gain (sRGB values, no clipping at these gains; png16 round trip ~1e-4)
    assert keys[-1] / keys[0] == pytest.approx(0.5, abs=2e-3)


def test_hue_ascending(tmp_path, kit):
    colours = {"a": (0.0, 0.667, 1.0), "b": (1.0, 0.5, 0.0), "c": (0.0, 1.0, 0.0)}  # hues 200, 30, 120
    faces = {stem: np.broadcast_to(np.float32(rgb), (kit.SIZE, kit.SIZE, 3)).copy() for stem, rgb in colours.items()}
    rows = sort_faceset(_faceset(tmp_path, kit, faces), "hue")
    assert [new for _, new, _ in rows] == ["00000_b_0.png", "00001_c_0.png", "00002_a_0.png"]
    assert [key for _, _, key in rows] == pytest.approx([30.0, 120.0, 199.9], abs=0.5)


def test_mean_hue_is_circular():
    image = np.zeros((4, 4, 3), np.float32)
    image[:, :2] = cv2.cvtColor(np.float32([[[350.0, 1.0, 1.0]]]), cv2.COLOR_HSV2RGB)
    image[:, 2:] = cv2.cvtColor(np.float32([[[10.0, 1.0, 1.0]]]), cv2.COLOR_HSV2RGB)
    hue = mean_hue(image, np.ones((4, 4), bool))
    assert min(hue, 360.0 - hue) < 1e-3  # red, not the 180 degrees (cyan) of a plain mean


def test_yaw_and_pitch_from_metadata(tmp_path, kit):
    poses = {"a": (0.1, 0.3), "b": (-0.2, -0.5), "c": (0.4, 0.0)}  # (pitch, yaw) in radians
    faces = {stem: kit.astronaut_crop() for stem in poses}
    metas = {
        stem: kit.make_meta(source_filename=f"{stem}.exr", pose={"pitch": p, "yaw": y, "roll": 0.0})
        for stem, (p, y) in poses.items()
    }
    faceset = _faceset(tmp_path, kit, faces, metas)
    by_yaw = sort_faceset(faceset, "yaw", dry_run=True)
    assert [(old, key) for old, _, key in by_yaw] == [
        ("b_0.png", pytest.approx(np.degrees(-0.5))),
        ("c_0.png", pytest.approx(0.0)),
        ("a_0.png", pytest.approx(np.degrees(0.3))),
    ]
    by_pitch = sort_faceset(faceset, "pitch")
    assert [new for _, new, _ in by_pitch] == ["00000_b_0.png", "00001_a_0.png", "00002_c_0.png"]


def test_hist_chain_keeps_similar_faces_together(tmp_path, kit):
    astronaut = kit.astronaut_crop()
    coffee = cv2.resize(skimage.data.coffee()[:400, 100:500].astype(np.float32) / 255, (kit.SIZE, kit.SIZE))
    faces = {"a": astronaut, "b": coffee, "c": _blur(astronaut, 0.7), "d": _blur(coffee, 0.7)}
    rows = sort_faceset(_faceset(tmp_path, kit, faces), "hist")
    order = [old for old, _, _ in rows]
    assert order[:2] == ["a_0.png", "c_0.png"] and set(order[2:]) == {"b_0.png", "d_0.png"}
    keys = [key for _, _, key in rows]
    assert keys[0] == 1.0 and keys[1] > 0.9 and keys[3] > 0.9
    assert keys[2] < keys[1]  # the jump from the astronaut to the coffee cup


def test_vectorised_correlation_equals_compare_hist(kit):
    a = rgb_histograms(kit.astronaut_crop())
    b = rgb_histograms(kit.astronaut_crop()[::-1] * 0.8)
    unit = _standardised(np.stack([a, b]))
    assert float(unit[0] @ unit[1]) == pytest.approx(histogram_correlation(a, b), abs=1e-6)
    assert float(unit[0] @ unit[0]) == pytest.approx(1.0, abs=1e-9)


def test_face_identity_chain_and_reference(tmp_path, kit, real_faces):
    astro, hopper = real_faces["astronaut"], real_faces["hopper"]
    faces = {
        "a": astro.aligned,
        "b": hopper.aligned,
        "c": _blur(astro.aligned, 0.8),
        "d": np.clip(hopper.aligned * 1.15, 0, 1),
    }
    metas = {
        stem: kit.real_meta(face, source_filename=f"{stem}.exr")
        for stem, face in (("a", astro), ("b", hopper), ("c", astro), ("d", hopper))
    }
    faceset = _faceset(tmp_path / "set", kit, faces, metas)

    chain = sort_faceset(faceset, "face", dry_run=True)
    assert [old for old, _, _ in chain][:2] == ["a_0.png", "c_0.png"]
    distances = [key for _, _, key in chain]
    assert distances[0] == 0.0 and distances[1] < SAME_PERSON and distances[3] < SAME_PERSON
    assert distances[2] > SAME_PERSON  # the step from one person to the other

    reference_set = _faceset(tmp_path / "ref", kit, {"ref": hopper.aligned}, {"ref": kit.real_meta(hopper)})
    rows = sort_faceset(faceset, "face", reference=reference_set.root / "ref_0.png")
    assert {new for _, new, _ in rows[:2]} == {"00000_b_0.png", "00001_d_0.png"}
    assert all(key < SAME_PERSON for _, _, key in rows[:2]) and all(key > SAME_PERSON for _, _, key in rows[2:])


def test_reference_must_be_an_aligned_face(tmp_path, kit):
    faceset = _faceset(tmp_path / "set", kit, {"a": kit.astronaut_crop()})
    plain = tmp_path / "plain.png"
    cv2.imwrite(str(plain), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DflError, match="plain.png: not an aligned face"):
        sort_faceset(faceset, "face", reference=plain)
    with pytest.raises(DflError, match="applies to sorting by face only"):
        sort_faceset(faceset, "blur", reference=plain)


def test_unknown_key_lists_the_keys(tmp_path, kit):
    faceset = _faceset(tmp_path, kit, {"a": kit.astronaut_crop()})
    with pytest.raises(DflError, match="unknown sort key 'sharpness'; use one of blur, yaw, pitch, hist, brightness"):
        sort_faceset(faceset, "sharpness")


def test_dry_run_renames_nothing(tmp_path, kit):
    faceset = _faceset(tmp_path, kit, {"a": kit.astronaut_crop(), "b": kit.astronaut_crop() * 0.5})
    rows = sort_faceset(faceset, "brightness", dry_run=True)
    assert [new for _, new, _ in rows] == ["00000_a_0.png", "00001_b_0.png"]
    assert _names(faceset) == ["a_0.png", "b_0.png"]


def test_digit_frame_stems_and_hand_renamed_faces_keep_their_names(tmp_path, kit):
    """DeepFaceLab frames are 00001.png, so 00001_0.png is an original name, not a rank prefix."""
    base = kit.astronaut_crop()
    faceset = Faceset.create(tmp_path, face_type="wf", size=kit.SIZE)
    faceset.add("00001_0.png", kit.srgb_to_working(base), kit.make_meta(source_filename="00001.png"))
    faceset.add("hero.png", kit.srgb_to_working(base * 0.5), kit.make_meta(source_filename="plate.1001.exr"))
    sort_faceset(faceset, "brightness")
    assert _names(faceset) == ["00000_00001_0.png", "00001_hero.png"]
    rows = sort_faceset(faceset, "brightness", dry_run=True)
    assert [new for _, new, _ in rows] == ["00000_00001_0.png", "00001_hero.png"]


def test_a_foreign_file_in_the_way_stops_the_sort_before_any_rename(tmp_path, kit):
    faceset = _faceset(tmp_path, kit, {"a": kit.astronaut_crop(), "b": kit.astronaut_crop() * 0.5})
    blocker = tmp_path / "00001_b_0.png"
    cv2.imwrite(str(blocker), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DflError, match="00001_b_0.png: already exists and is not one of the faces"):
        sort_faceset(faceset, "brightness")
    assert _names(faceset) == ["00001_b_0.png", "a_0.png", "b_0.png"]


def test_swapping_names_between_faces_is_collision_free(tmp_path, kit):
    """Two faces trading ranked names exercise the two-phase rename."""
    base = kit.astronaut_crop()
    faceset = _faceset(tmp_path, kit, {"a": base * 0.5, "b": base})
    sort_faceset(faceset, "brightness")
    assert _names(faceset) == ["00000_b_0.png", "00001_a_0.png"]
    faceset.add("00000_b_0.png", kit.srgb_to_working(base * 0.4), kit.make_meta(source_filename="b.exr"))
    sort_faceset(faceset, "brightness")
    assert _names(faceset) == ["00000_a_0.png", "00001_b_0.png"]
    by_name = {r.name: r.meta.source_filename for r in faceset.records()}
    assert by_name == {"00000_a_0.png": "a.exr", "00001_b_0.png": "b.exr"}
