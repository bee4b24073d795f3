"""The XSeg segmentation network (reference section 3): a 6-level U-Net of Conv3x3 + FRN + TLU blocks.

Encoder: per level two convs (three in the three deepest levels), then BlurPool downsampling (binomial filters of
sizes 4, 3, 2, 2, 2, 2, stride 2). Bottleneck: Dense((R/64)^2 * 8B -> 512) -> Dense(512 -> (R/64)^2 * 8B). Decoder:
per level a transposed-conv up-block, concatenation with the encoder's skip, then as many convs as the encoder level
had. A final Conv3x3 gives one logit channel. ``forward`` takes images in [0, 1] (centred to [-1, 1] inside) and
returns ``(logits, sigmoid(logits))``.

The full configuration (``XSegConfig()``: 256 px, base 32, channels 32, 64, 128, 256, 256, 256) has
17,569,281 parameters (weights, biases and the FRN/TLU per-channel parameters), the reference's ~17.6 M;
``XSegConfig.reduced()`` is a small one for CPU tests. Images are NCHW RGB in [0, 1].
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfl_vfx.errors import DflError

LEVELS = 6
BLUR_FILTER_SIZES = (4, 3, 2, 2, 2, 2)
DENSE_UNITS = 512
FRN_EPS = 1e-6
MIN_RESOLUTION = 64  # six halvings down to a 1x1 bottleneck


@dataclass(frozen=True)
class XSegConfig:
    """Network shape: input resolution (multiple of 64) and base channels (levels use 1, 2, 4, 8, 8, 8 x base)."""

    resolution: int = 256
    base_ch: int = 32
    in_ch: int = 3
    out_ch: int = 1

    @classmethod
    def reduced(cls) -> XSegConfig:
        """A CPU-test configuration: 64 px, base 8 (about 0.28 M parameters)."""
        return cls(resolution=64, base_ch=8)

    def validate(self) -> None:
        if self.resolution < MIN_RESOLUTION or self.resolution % 64:
            raise DflError(f"xseg resolution {self.resolution} must be a multiple of 64 (64, 128, 256, ...)")
        if not 4 <= self.base_ch <= 256:
            raise DflError(f"xseg base_ch {self.base_ch} is out of range 4..256 (the reference uses 32)")

    @property
    def channels(self) -> tuple[int, ...]:
        b = self.base_ch
        return (b, 2 * b, 4 * b, 8 * b, 8 * b, 8 * b)

    @property
    def bottleneck_side(self) -> int:
        return self.resolution // 2**LEVELS

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "xseg config") -> XSegConfig:
        try:
            cfg = cls(**{key: int(data[key]) for key in ("resolution", "base_ch", "in_ch", "out_ch") if key in data})
        except (TypeError, ValueError) as exc:
            raise DflError(f"{source}: invalid XSeg network configuration ({exc})") from None
        cfg.validate()
        return cfg

    def describe(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


class FRN(nn.Module):
    """Filter response normalisation with a thresholded linear unit: ``max(gamma * x / rms(x) + beta, tau)``.

    ``rms`` is over each channel's spatial extent (no batch statistics, so training and inference agree at any batch
    size); gamma, beta and tau are per-channel parameters.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.tau = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        nu2 = torch.mean(x * x, dim=(2, 3), keepdim=True)
        x = x * torch.rsqrt(nu2 + FRN_EPS)
        return torch.maximum(self.gamma * x + self.beta, self.tau)


class ConvBlock(nn.Module):
    """Conv3x3 ('same') + FRN + TLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.frn = FRN(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.frn(self.conv(x))


class UpBlock(nn.Module):
    """Transposed Conv3x3 stride 2 (doubles the side) + FRN + TLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1)
        self.frn = FRN(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.frn(self.conv(x))


class BlurPool(nn.Module):
    """Anti-aliased downsampling: a fixed binomial filter of ``size`` taps (separable), stride 2, reflect padding.

    The output side is ``ceil(n / 2)`` for every filter size; the filter sums to 1, so a flat image stays flat.
    """

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        taps = torch.tensor([float(_binomial(size - 1, k)) for k in range(size)])
        kernel = taps[:, None] * taps[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("kernel", kernel.expand(channels, 1, size, size).clone(), persistent=False)
        self.channels = channels
        total = size - 1
        self.pad = (total // 2, total - total // 2, total // 2, total - total // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, self.pad, mode="reflect")
        return F.conv2d(x, self.kernel, stride=2, groups=self.channels)


def _binomial(n: int, k: int) -> int:
    out = 1
    for i in range(k):
        out = out * (n - i) // (i + 1)
    return out


class XSeg(nn.Module):
    """The XSeg U-Net; ``forward(images (N, 3, R, R))`` -> ``(logits, probabilities)``, each (N, 1, R, R)."""

    def __init__(self, cfg: XSegConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or XSegConfig()
        cfg.validate()
        self.cfg = cfg
        chans = cfg.channels
        depth = [2, 2, 2, 3, 3, 3]  # convs per level: three in the deep stages
        self.down = nn.ModuleList()
        self.pools = nn.ModuleList()
        previous = cfg.in_ch
        for level in range(LEVELS):
            convs = [ConvBlock(previous if i == 0 else chans[level], chans[level]) for i in range(depth[level])]
            self.down.append(nn.Sequential(*convs))
            self.pools.append(BlurPool(chans[level], BLUR_FILTER_SIZES[level]))
            previous = chans[level]
        side = cfg.bottleneck_side
        flat = side * side * chans[-1]
        self.dense1 = nn.Linear(flat, DENSE_UNITS)
        self.dense2 = nn.Linear(DENSE_UNITS, flat)
        self.ups = nn.ModuleList()
        self.up_convs = nn.ModuleList()
        below = chans[-1]
        for level in reversed(range(LEVELS)):
            up_ch = chans[min(level, 2)]  # the three deep levels come up at 4 x base, the others at their width
            self.ups.append(UpBlock(below, up_ch))
            convs = [ConvBlock(up_ch + chans[level] if i == 0 else chans[level], chans[level])
                     for i in range(depth[level])]
            self.up_convs.append(nn.Sequential(*convs))
            below = chans[level]
        self.out_conv = nn.Conv2d(chans[0], cfg.out_ch, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x * 2.0 - 1.0  # FRN does not subtract means: centred inputs train several times faster
        skips = []
        for block, pool in zip(self.down, self.pools, strict=True):
            x = block(x)
            skips.append(x)
            x = pool(x)
        n, c, h, w = x.shape
        x = self.dense2(self.dense1(x.flatten(1))).view(n, c, h, w)
        for up, convs, skip in zip(self.ups, self.up_convs, reversed(skips), strict=True):
            x = convs(torch.cat((up(x), skip), dim=1))
        logits = self.out_conv(x)
        return logits, torch.sigmoid(logits)


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (weights, biases, FRN/TLU parameters)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


KIND = "xseg"  # checkpoint "kind" of XSeg models (SAEHD checkpoints have none)


@dataclass(frozen=True)
class LoadedXSeg:
    """A trained XSeg network (eval mode, CPU, float32) and what it was trained on."""

    model: XSeg
    face_type: str  # FaceType.cli_name of the training faces
    iteration: int
    path: str

    @property
    def resolution(self) -> int:
        return self.model.cfg.resolution


def load_xseg(model_dir: str | Path) -> LoadedXSeg:
    """Load an XSeg model folder (or its checkpoint.pt); anything that is not one, or whose weights do not fit its
    stated network (resolution, channels), is a one-line DflError."""
    from dfl_vfx.models.checkpoint import checkpoint_path, load_checkpoint

    path = checkpoint_path(model_dir)
    state = load_checkpoint(path)
    if state.get("kind") != KIND:
        raise DflError(f"{path}: not an XSeg model (a face-swap model?); train one with `dfl-vfx xseg train`")
    try:
        cfg = XSegConfig.from_dict(state["config"]["xseg"], str(path))
        face_type = str(state["config"]["face_type"])
        weights = state["model"]
    except (KeyError, TypeError):
        raise DflError(f"{path}: the XSeg checkpoint lacks its network configuration; retrain it") from None
    model = XSeg(cfg)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        reason = str(exc).splitlines()[1:2] or [str(exc)[:160]]
        raise DflError(f"{path}: its weights do not fit a {cfg.resolution} px, base {cfg.base_ch} XSeg network "
                       f"({reason[0].strip()[:160]}); the checkpoint is damaged or was edited") from None
    return LoadedXSeg(model.eval(), face_type, int(state.get("iteration", 0)), str(path))
