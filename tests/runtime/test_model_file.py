"""inspect_model: each model kind's roles, layout and spaces; unusable files as one-line DflErrors."""

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.export.onnx_export import KIND_DFM, KIND_SWAP
from dfl_vfx.runtime.model_file import _inferred_values, _static_dims, inspect_model, short_face_type


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_our_onnx(models) -> None:
    info = inspect_model(models.onnx)
    assert (info.kind, info.resolution, info.face_type, info.input_space, info.layout) == (
        KIND_SWAP, 64, "f", "working", "nchw_rgb")
    assert info.input_name == "face"
    assert info.output_names == ("rgb", "mask_src", "mask_dst")
    assert not info.needs_morph
    assert info.sha256 == _sha256(models.onnx)
    assert info.metadata["archi"] == "df-ud" and info.metadata["iterations"] == "7"


def test_our_dfm_maps_outputs_by_the_dfm_positions(models) -> None:
    info = inspect_model(models.dfm)
    assert (info.kind, info.resolution, info.face_type, info.input_space, info.layout) == (
        KIND_DFM, 64, "f", "srgb", "nhwc_bgr")
    assert info.input_name == "in_face:0"
    # DFM outputs are (dst mask, swapped face, src mask); roles are (rgb, mask_src, mask_dst).
    assert info.output_names == ("out_celeb_face:0", "out_celeb_face_mask:0", "out_face_mask:0")
    assert inspect_model(models.dfm_working).input_space == "working"


def test_external_dfm_has_no_face_type_and_takes_srgb(models) -> None:
    info = inspect_model(models.external_dfm)
    assert (info.kind, info.resolution, info.face_type, info.input_space, info.layout) == (
        "dfm", 64, None, "srgb", "nhwc_bgr")
    assert info.output_names == ("out_celeb_face:0", "out_celeb_face_mask:0", "out_face_mask:0")
    assert info.metadata == {} and not info.needs_morph


def test_amp_dfm_needs_morph(models) -> None:
    info = inspect_model(models.amp_dfm)
    assert (info.kind, info.resolution, info.needs_morph) == ("dfm", 16, True)


def test_model_folder_and_its_checkpoint_file(models) -> None:
    info = inspect_model(models.folder)
    assert (info.kind, info.resolution, info.face_type, info.input_space, info.layout) == (
        "checkpoint", 64, "f", "working", "nchw_rgb")
    assert info.output_names == ("rgb", "mask_src", "mask_dst")
    assert info.sha256 == _sha256(models.folder / "checkpoint.pt")
    assert info.metadata["iterations"] == "7"
    assert inspect_model(models.folder / "checkpoint.pt").sha256 == info.sha256


@pytest.mark.parametrize(("name", "short"), [("whole_face", "wf"), ("full_face", "f"), ("head", "head"),
                                             ("mf", "mf"), ("half_face", "h")])
def test_face_types_are_reported_by_short_name(name: str, short: str) -> None:
    assert short_face_type(name) == short


@pytest.mark.parametrize("suffix", [".onnx", ".dfm"])
def test_corrupt_file_names_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DflError, match=f"broken\\{suffix}") as err:
        inspect_model(path)
    assert "\n" not in str(err.value)


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(DflError, match="no such model file"):
        inspect_model(tmp_path / "missing.onnx")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(DflError, match="model.bin: unknown model file type"):
        inspect_model(tmp_path / "model.bin")
    with pytest.raises(DflError, match="no checkpoint here"):
        inspect_model(tmp_path)


def test_foreign_onnx_is_refused_not_guessed(models, tmp_path: Path) -> None:
    """An .onnx without our kind metadata is refused even though its shapes look like a DFM."""
    foreign = tmp_path / "foreign.onnx"
    onnx.save(onnx.load(str(models.external_dfm)), str(foreign))
    with pytest.raises(DflError, match="foreign.onnx: this ONNX file was not exported by dfl-vfx"):
        inspect_model(foreign)


def test_dfm_without_in_face_input_is_refused(models, tmp_path: Path) -> None:
    proto = onnx.load(str(models.external_dfm))
    proto.graph.input[0].name = "image"
    for node in proto.graph.node:
        node.input[:] = ["image" if name == "in_face:0" else name for name in node.input]
    path = tmp_path / "renamed.dfm"
    onnx.save(proto, str(path))
    with pytest.raises(DflError, match="renamed.dfm: DFM input 0 is named 'image'"):
        inspect_model(path)


@pytest.mark.parametrize("outputs", ["static", "symbolic"])
@pytest.mark.parametrize(("dfm", "output", "should", "has"), [
    (False, "rgb output 'rgb'", "(N, 3, 64, 64)", "(?, 3, 32, 32)"),
    (True, "rgb output 'out_celeb_face:0'", "(N, 64, 64, 3)", "(?, 32, 32, 3)"),
])
def test_outputs_at_another_resolution_are_refused_when_inspected(
    half_size_model, dfm: bool, output: str, should: str, has: str, outputs: str
) -> None:
    """Right names and metadata, but 32 px outputs for a declared 64: refused up front, not deep in the merge,
    whether the graph declares the output size or leaves it symbolic for shape inference to find (as our exports
    do)."""
    path = half_size_model(64, dfm=dfm, outputs=outputs)
    with pytest.raises(DflError) as err:
        inspect_model(path)
    assert str(err.value) == (f"{path}: declares resolution 64, so its {output} should be {should}, but the graph "
                              f"has {has}; export the model again")


def test_our_exports_have_their_output_sizes_inferred(models) -> None:
    """Our exports leave the output height and width symbolic; shape inference finds them, so a wrong one shows."""
    proto = onnx.load(str(models.onnx))
    declared = proto.graph.output[0].type.tensor_type.shape.dim
    assert [dim.dim_param != "" for dim in declared] == [True, False, True, True]
    values = _inferred_values(proto)
    assert [_static_dims(values[name]) for name in ("rgb", "mask_src", "mask_dst")] == [
        [None, 3, 64, 64], [None, 1, 64, 64], [None, 1, 64, 64]]


def test_input_channels_and_rank_are_checked(models, tmp_path: Path) -> None:
    proto = onnx.load(str(models.onnx))
    proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 4
    path = tmp_path / "four_channels.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(DflError, match=r"four_channels.onnx: declares resolution 64, so its input 'face' should be "
                                       r"\(N, 3, 64, 64\), but the graph has \(\?, 4, 64, 64\)"):
        inspect_model(path)
    proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 3
    del proto.graph.output[1].type.tensor_type.shape.dim[3]
    onnx.save(proto, str(path))
    with pytest.raises(DflError, match=r"its mask_src output 'mask_src' should be \(N, 1, 64, 64\), but the graph "
                                       r"has \(\?, 1, \?\)"):
        inspect_model(path)


def test_output_sizes_computed_at_run_time_pass_inspection(half_size_model) -> None:
    """Sizes neither declared nor inferable cannot be checked here; the runtime checks what such a model returns."""
    assert inspect_model(half_size_model(64, outputs="computed")).resolution == 64
