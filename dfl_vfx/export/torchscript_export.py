"""TorchScript export for Nuke's native path: a ``.pt`` that Foundry's CatFileCreator turns into a ``.cat`` for the
Inference node (docs/nuke.md, "Native path").

The contract (hosts-reference 1.7): ``forward(x)`` takes one 1xCxHxW image, scene-linear and unclamped, and returns
one tensor. Here C >= 3 (the first three channels are RGB) and the output is 1x4xHxW: the swapped face in the same
linear space and, as the fourth channel, the mask ``mask_src * mask_dst`` (the engine's default mask mode,
learned-prd*learned-dst). Everything the network needs happens inside ``forward``: linear -> ACEScct (the working
space the network was trained in; with ``plate_space="lin_rec709"`` first Rec.709 -> AP1 primaries, for Nuke's
default config), a resize to the model's resolution when the aligned face arrives at another size (the encoder's
dense layer fixes the network's size), the network, the resize back, and ACEScct -> linear.

The module is scripted (``torch.jit.script``), not traced, so nothing about the input's size is frozen in. It follows
the input: the network runs in the dtype and on the device of its weights (Nuke moves the model and halves it for
"Optimise for Speed and Memory"), the colour curves run in float32, and the result comes back in the input's dtype
and device. A JSON description (resolution, channels, colour spaces) rides along in the file as ``dfl_vfx.json``.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import dfl_vfx
from dfl_vfx.color.torch_curves import AP1_TO_REC709, REC709_TO_AP1
from dfl_vfx.errors import DflError
from dfl_vfx.io.atomic import atomic_path
from dfl_vfx.models.blocks import PIXEL_NORM_EPS, RESIDUAL_LEAKY_SLOPE, ResidualBlock
from dfl_vfx.models.contract import WORKING_COLOR_SPACE
from dfl_vfx.models.saehd import Encoder

PLATE_SPACES = ("ACEScg", "lin_rec709")  # linear AP1 (the engine's default plate space) or linear Rec.709
EXTRA_FILE = "dfl_vfx.json"
CHANNELS_IN = ("rgba.red", "rgba.green", "rgba.blue")
CHANNELS_OUT = ("rgba.red", "rgba.green", "rgba.blue", "rgba.alpha")



class ScriptResidualBlock(nn.Module):
    """:class:`~dfl_vfx.models.blocks.ResidualBlock` with its constant held by the module (TorchScript cannot read a
    module-level float); the same convolutions, so the same function."""

    def __init__(self, block: ResidualBlock) -> None:
        super().__init__()
        self.conv1 = block.conv1
        self.conv2 = block.conv2
        self.slope = RESIDUAL_LEAKY_SLOPE

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.conv1(x), self.slope)
        return F.leaky_relu(x + self.conv2(h), self.slope)


class ScriptEncoder(nn.Module):
    """:class:`~dfl_vfx.models.saehd.Encoder` with the pixel norm's epsilon held by the module."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.body = encoder.body
        self.use_pixel_norm = encoder.use_pixel_norm
        self.eps = PIXEL_NORM_EPS

    def forward(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.body(x), 1)
        if self.use_pixel_norm:
            x = x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + self.eps)
        return x


def scriptable(module: nn.Module) -> nn.Module:
    """``module`` with every block TorchScript cannot compile swapped, in place, for its mirror above."""
    for name, child in module.named_children():
        if isinstance(child, ResidualBlock):
            setattr(module, name, ScriptResidualBlock(child))
        elif isinstance(child, Encoder):
            setattr(module, name, ScriptEncoder(scriptable(child)))
        else:
            scriptable(child)
    return module


class DfCore(nn.Module):
    """The DF routing of an SAEHD model's inference graph, in a scriptable form: (rgb, mask_src, mask_dst)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.inter = model.inter
        self.decoder_src = model.decoder_src
        self.decoder_dst = model.decoder_dst

    def forward(self, face: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        code = self.inter(self.encoder(face))
        return self.decoder_src.rgb(code), self.decoder_src.mask(code), self.decoder_dst.mask(code)


class LiaeCore(nn.Module):
    """The LIAE routing of an SAEHD model's inference graph, in a scriptable form: (rgb, mask_src, mask_dst)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.inter_AB = model.inter_AB
        self.inter_B = model.inter_B
        self.decoder = model.decoder

    def forward(self, face: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        features = self.encoder(face)
        ab = self.inter_AB(features)
        swap = torch.cat([ab, ab], 1)
        dst_mask = self.decoder.mask(torch.cat([self.inter_B(features), ab], 1))
        return self.decoder.rgb(swap), self.decoder.mask(swap), dst_mask


# ACEScct (S-2016-001) as dfl_vfx.color.torch_curves evaluates it, with the constants written in (TorchScript cannot
# read module-level floats): linear break 0.0078125, log break 0.155251141552511, toe slope 10.5402377416545, toe
# offset 0.0729055341958355.
def _linear_to_acescct(linear: Tensor) -> Tensor:
    log = (torch.log2(linear.clamp(min=0.0078125)) + 9.72) / 17.52
    return torch.where(linear <= 0.0078125, linear * 10.5402377416545 + 0.0729055341958355, log)


def _acescct_to_linear(cct: Tensor) -> Tensor:
    exp = torch.exp2(cct.clamp(min=0.155251141552511) * 17.52 - 9.72)
    return torch.where(cct <= 0.155251141552511, (cct - 0.0729055341958355) / 10.5402377416545, exp)


def _resize(image: Tensor, height: int, width: int) -> Tensor:
    if image.shape[-2] == height and image.shape[-1] == width:
        return image
    return F.interpolate(image, size=[height, width], mode="bilinear", align_corners=False, antialias=True)


class NukeSwap(nn.Module):
    """Linear 1xCxHxW (C >= 3) -> 1x4xHxW: the swapped face (linear, same primaries) and its mask."""

    def __init__(self, core: nn.Module, resolution: int, plate_space: str) -> None:
        super().__init__()
        self.core = core
        self.resolution = resolution
        self.convert_primaries = plate_space == "lin_rec709"
        self.register_buffer("to_ap1", torch.tensor(REC709_TO_AP1, dtype=torch.float32))
        self.register_buffer("from_ap1", torch.tensor(AP1_TO_REC709, dtype=torch.float32))
        self.register_buffer("weight_probe", torch.zeros(1))  # its dtype and device are the network's

    def _primaries(self, rgb: Tensor, matrix: Tensor) -> Tensor:
        if not self.convert_primaries:
            return rgb
        return torch.einsum("ij,njhw->nihw", matrix.to(device=rgb.device, dtype=torch.float32), rgb)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2], x.shape[-1]
        rgb = x[:, :3].to(torch.float32)
        cct = _linear_to_acescct(self._primaries(rgb, self.to_ap1))
        face = _resize(cct, self.resolution, self.resolution)
        net = self.weight_probe
        swap_rgb, mask_src, mask_dst = self.core(face.to(device=net.device, dtype=net.dtype))
        out_rgb = _resize(swap_rgb.to(device=x.device, dtype=torch.float32), height, width)
        mask = _resize((mask_src * mask_dst).to(device=x.device, dtype=torch.float32), height, width)
        linear = self._primaries(_acescct_to_linear(out_rgb), self.from_ap1)
        return torch.cat([linear, mask.clamp(0.0, 1.0)], 1).to(x.dtype)


@dataclass(frozen=True)
class TorchScriptInfo:
    """What the ``.pt`` says about itself (its ``dfl_vfx.json``) and what CatFileCreator needs."""

    resolution: int
    face_type: str
    archi: str
    iterations: int
    plate_space: str

    def to_dict(self) -> dict[str, Any]:
        return {"format": "dfl_vfx.torchscript", "dfl_vfx_version": dfl_vfx.__version__,
                "resolution": self.resolution, "face_type": self.face_type, "archi": self.archi,
                "iterations": self.iterations, "torch_version": torch.__version__,
                "input": f"linear {self.plate_space}, 1xCxHxW, C >= 3",
                "output": "1x4xHxW: face RGB (linear) and mask", "working_space": WORKING_COLOR_SPACE,
                "channels_in": list(CHANNELS_IN), "channels_out": list(CHANNELS_OUT), "output_scale": 1}


def nuke_module(model: nn.Module, plate_space: str = "ACEScg") -> torch.jit.ScriptModule:
    """The scripted Nuke module of an SAEHD model (a CPU float32 eval copy; the caller's model is untouched)."""
    if plate_space not in PLATE_SPACES:
        raise DflError(f"--plate-space {plate_space}: use one of {', '.join(PLATE_SPACES)}")
    frozen = scriptable(copy.deepcopy(model).to("cpu", torch.float32).eval())
    core = LiaeCore(frozen) if getattr(frozen, "is_liae", False) else DfCore(frozen)
    module = NukeSwap(core, int(frozen.config.resolution), plate_space).eval()
    try:
        with warnings.catch_warnings():  # torch 2.13 calls TorchScript deprecated; Nuke 14-16 load nothing else
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit\.")
            return torch.jit.script(module)
    except (RuntimeError, torch.jit.frontend.FrontendError) as exc:  # a model class TorchScript cannot compile
        raise DflError(f"the {frozen.config.archi} model cannot be scripted for Nuke "
                       f"({str(exc).strip().splitlines()[0]}); use the ONNX export") from None


def export_torchscript(model: nn.Module, path: str | Path, iterations: int, plate_space: str = "ACEScg") -> Path:
    """Write the scripted Nuke module of ``model`` to ``path`` (atomically) with its ``dfl_vfx.json``."""
    scripted = nuke_module(model, plate_space)
    config = model.config
    info = TorchScriptInfo(int(config.resolution), str(config.face_type_name), str(config.archi), iterations,
                           plate_space)
    path = Path(path)
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit\.")
            torch.jit.save(scripted, str(tmp), _extra_files={EXTRA_FILE: json.dumps(info.to_dict())})
    except OSError as exc:
        raise DflError(f"cannot write {path} ({exc.strerror or exc}); choose a writable output file") from None
    return path


def _load(path: str, **kwargs: Any) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit\.")
        return torch.jit.load(path, map_location="cpu", **kwargs)


def read_info(path: str | Path) -> dict[str, Any]:
    """The ``dfl_vfx.json`` of an exported ``.pt``."""
    extra = {EXTRA_FILE: ""}
    try:
        _load(str(path), _extra_files=extra)
    except (RuntimeError, OSError, ValueError) as exc:
        raise DflError(f"cannot load {path} as TorchScript ({str(exc).splitlines()[0]}); re-export it") from None
    if not extra[EXTRA_FILE]:
        raise DflError(f"{path} was not exported by dfl-vfx (no {EXTRA_FILE}); re-export it")
    return dict(json.loads(extra[EXTRA_FILE]))


def verify_torchscript(path: str | Path, model: nn.Module, plate_space: str, samples: Tensor) -> float:
    """Max abs difference between the saved ``.pt`` (loaded back) and the eager model with the colour curves of
    :mod:`dfl_vfx.color.torch_curves`, on linear ``samples`` (N, 3, R, R); relative to max(1, |expected|) since the
    linear face reaches ~222 where ACEScct reaches 1."""
    from dfl_vfx.color.torch_curves import acescct_to_linear, apply_matrix, linear_to_acescct

    loaded = _load(str(path))
    reference = copy.deepcopy(model).to("cpu", torch.float32).eval()
    worst = 0.0
    with torch.no_grad():
        for sample in samples:
            x = sample[None].to(torch.float32)
            rgb = x.permute(0, 2, 3, 1)
            if plate_space == "lin_rec709":
                rgb = apply_matrix(rgb, REC709_TO_AP1)
            swap_rgb, mask_src, mask_dst = reference.swap(linear_to_acescct(rgb).permute(0, 3, 1, 2))
            linear = acescct_to_linear(swap_rgb.permute(0, 2, 3, 1))
            if plate_space == "lin_rec709":
                linear = apply_matrix(linear, AP1_TO_REC709)
            expected = torch.cat([linear.permute(0, 3, 1, 2), mask_src * mask_dst], 1)
            got = loaded(x)
            worst = max(worst, float(((got - expected).abs() / expected.abs().clamp(min=1.0)).max()))
    return worst
