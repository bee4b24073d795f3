"""SAEHD-class autoencoders (DF and LIAE routing, archi letters u/d/t/c) built from a ``ModelConfig``.

Shapes follow reference 4.3; the ``t`` variant (4.2) is: encoder Downscale(e) + ResidualBlock(e) + Downscales to
2e, 4e, 8e, 8e + ResidualBlock(8e); inter without the final Upscale; decoder Upscales to 8d, 8d, 4d, 2d, each
followed by a ResidualBlock, and mask Upscales to 8m, 8m, 4m, 2m (+m with ``d``). With ``d`` the rgb output is one
Conv1x1 to 12 channels + pixel shuffle, which is exactly the reference's four Conv1x1 3-channel heads +
depth_to_space (same parameters, same function family). Weights are Glorot-uniform, biases zero (DFL's TF defaults).

Tensors are NCHW float; images in [0, 1]; every output is a sigmoid. ``forward`` is the training graph, ``swap`` the
inference graph that export wraps (DFM outputs: dst mask, swapped face, src mask of the swap; reference 7).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

from dfl_vfx.errors import DflError
from dfl_vfx.models.blocks import Downscale, ResidualBlock, Upscale, init_glorot, pixel_norm
from dfl_vfx.models.config import ModelConfig

OUTPUT_KEYS = ("src_rgb", "src_mask", "dst_rgb", "dst_mask", "swap_rgb", "swap_mask", "src_code", "dst_code")


class Encoder(nn.Module):
    """Strided 5x5 convolutions (4, or 5 with ``deep``) to 8·e_dims channels, flattened; pixel-normed with ``u``."""

    def __init__(
        self, e_dims: int, resolution: int, deep: bool = False, use_pixel_norm: bool = False, act: str = "leaky_relu"
    ) -> None:
        super().__init__()
        e = e_dims
        if deep:
            layers: list[nn.Module] = [
                Downscale(3, e, act=act),
                ResidualBlock(e),
                Downscale(e, 2 * e, act=act),
                Downscale(2 * e, 4 * e, act=act),
                Downscale(4 * e, 8 * e, act=act),
                Downscale(8 * e, 8 * e, act=act),
                ResidualBlock(8 * e),
            ]
        else:
            widths = [3, e, 2 * e, 4 * e, 8 * e]
            layers = [Downscale(i, o, act=act) for i, o in zip(widths, widths[1:], strict=False)]
        self.body = nn.Sequential(*layers)
        self.use_pixel_norm = use_pixel_norm
        side = resolution
        for _ in range(5 if deep else 4):
            side = math.ceil(side / 2)
        self.out_resolution = side
        self.out_features = 8 * e * side * side

    def forward(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.body(x), 1)
        return pixel_norm(x, dim=1) if self.use_pixel_norm else x


class Inter(nn.Module):
    """Dense(in→ae_dims) → Dense(ae_dims→L·L·out_ch) → reshape (out_ch, L, L) → Upscale (unless ``t``)."""

    def __init__(
        self, in_features: int, ae_dims: int, out_ch: int, grid: int, upscale: bool = True, act: str = "leaky_relu"
    ) -> None:
        super().__init__()
        self.dense1 = nn.Linear(in_features, ae_dims)
        self.dense2 = nn.Linear(ae_dims, grid * grid * out_ch)
        self.upscale = Upscale(out_ch, out_ch, act=act) if upscale else nn.Identity()
        self.out_ch = out_ch
        self.grid = grid
        self.out_resolution = grid * 2 if upscale else grid

    def forward(self, x: Tensor) -> Tensor:
        x = self.dense2(self.dense1(x)).reshape(-1, self.out_ch, self.grid, self.grid)
        return self.upscale(x)


class Decoder(nn.Module):
    """Code → (rgb, mask): Upscale+ResidualBlock stages for rgb, a narrower Upscale stack for the mask; sigmoids."""

    def __init__(
        self,
        in_ch: int,
        d_dims: int,
        mask_dims: int,
        deep: bool = False,
        double: bool = False,
        act: str = "leaky_relu",
    ) -> None:
        super().__init__()
        scales = [8, 8, 4, 2] if deep else [8, 4, 2]
        rgb_widths = [in_ch] + [s * d_dims for s in scales]
        rgb_layers: list[nn.Module] = []
        for i, o in zip(rgb_widths, rgb_widths[1:], strict=False):
            rgb_layers += [Upscale(i, o, act=act), ResidualBlock(o)]
        self.rgb_body = nn.Sequential(*rgb_layers)
        self.double = double
        self.rgb_out = nn.Conv2d(2 * d_dims, 3 * 4 if double else 3, 1)

        mask_widths = [in_ch] + [s * mask_dims for s in scales] + ([mask_dims] if double else [])
        self.mask_body = nn.Sequential(
            *[Upscale(i, o, act=act) for i, o in zip(mask_widths, mask_widths[1:], strict=False)]
        )
        self.mask_out = nn.Conv2d(mask_widths[-1], 1, 1)

    def rgb(self, code: Tensor) -> Tensor:
        x = self.rgb_out(self.rgb_body(code))
        if self.double:
            x = nn.functional.pixel_shuffle(x, 2)
        return torch.sigmoid(x)

    def mask(self, code: Tensor) -> Tensor:
        return torch.sigmoid(self.mask_out(self.mask_body(code)))

    def forward(self, code: Tensor) -> tuple[Tensor, Tensor]:
        return self.rgb(code), self.mask(code)


class SAEHD(nn.Module):
    """DF (``encoder``, ``inter``, ``decoder_src``, ``decoder_dst``) or LIAE (``encoder``, ``inter_AB``, ``inter_B``,
    ``decoder``) autoencoder; the config is validated and copied."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = dataclasses.replace(config.validate())
        opts = config.options
        act = "cos" if "c" in opts else "leaky_relu"
        deep = "t" in opts
        ae = config.ae_dims
        self.is_liae = config.base == "liae"
        self.encoder = Encoder(config.e_dims, config.resolution, deep=deep, use_pixel_norm="u" in opts, act=act)
        grid = config.bottleneck_resolution
        inter_out = 2 * ae if self.is_liae else ae
        inter_names = ["inter_AB", "inter_B"] if self.is_liae else ["inter"]
        for name in inter_names:
            self.add_module(name, Inter(self.encoder.out_features, ae, inter_out, grid, upscale=not deep, act=act))
        code_ch = 2 * inter_out if self.is_liae else inter_out
        decoder_names = ["decoder"] if self.is_liae else ["decoder_src", "decoder_dst"]
        for name in decoder_names:
            self.add_module(
                name, Decoder(code_ch, config.d_dims, config.mask_dims, deep=deep, double="d" in opts, act=act)
            )
        self._inter_names = inter_names
        self.code_shape = (code_ch, grid if deep else 2 * grid, grid if deep else 2 * grid)
        init_glorot(self)

    def forward(self, src: Tensor, dst: Tensor) -> dict[str, Tensor]:
        """Training graph: reconstructions of src and dst, the swap (dst through src's path) and the inter codes."""
        n_src = src.shape[0]
        features = self.encoder(torch.cat([src, dst], 0))
        if self.is_liae:
            e_src, e_dst = torch.split(features, [n_src, features.shape[0] - n_src])
            ab_src, ab_dst = self.inter_AB(e_src), self.inter_AB(e_dst)
            src_code = torch.cat([ab_src, ab_src], 1)
            dst_code = torch.cat([self.inter_B(e_dst), ab_dst], 1)
            swap_code = torch.cat([ab_dst, ab_dst], 1)
            rgb, mask = self.decoder(torch.cat([src_code, dst_code, swap_code], 0))
            src_rgb, dst_rgb, swap_rgb = torch.split(rgb, [n_src, dst.shape[0], dst.shape[0]])
            src_mask, dst_mask, swap_mask = torch.split(mask, [n_src, dst.shape[0], dst.shape[0]])
        else:
            codes = self.inter(features)
            src_code, dst_code = torch.split(codes, [n_src, codes.shape[0] - n_src])
            rgb, mask = self.decoder_src(codes)
            src_rgb, swap_rgb = torch.split(rgb, [n_src, dst.shape[0]])
            src_mask, swap_mask = torch.split(mask, [n_src, dst.shape[0]])
            dst_rgb, dst_mask = self.decoder_dst(dst_code)
        return {
            "src_rgb": src_rgb,
            "src_mask": src_mask,
            "dst_rgb": dst_rgb,
            "dst_mask": dst_mask,
            "swap_rgb": swap_rgb,
            "swap_mask": swap_mask,
            "src_code": src_code,
            "dst_code": dst_code,
        }

    def swap(self, dst: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Inference graph: (swapped rgb, src-decoder mask of the swap, learned dst mask)."""
        features = self.encoder(dst)
        if self.is_liae:
            ab = self.inter_AB(features)
            swap_rgb, swap_mask = self.decoder(torch.cat([ab, ab], 1))
            dst_mask = self.decoder.mask(torch.cat([self.inter_B(features), ab], 1))
        else:
            code = self.inter(features)
            swap_rgb, swap_mask = self.decoder_src(code)
            dst_mask = self.decoder_dst.mask(code)
        return swap_rgb, swap_mask, dst_mask

    def inter_modules(self) -> list[str]:
        """Names of the inter block(s): ``['inter']`` for DF, ``['inter_AB', 'inter_B']`` for LIAE."""
        return list(self._inter_names)

    def reset_parameters(self, names: list[str]) -> None:
        """Re-initialise the named submodules (Glorot weights, zero biases), e.g. ``inter_modules()``."""
        available = [name for name, _ in self.named_children()]
        for name in names:
            if name not in available:
                raise DflError(f"cannot re-initialise {name!r}: a {self.config.archi} model has {', '.join(available)}")
        for name in names:
            init_glorot(self.get_submodule(name))

    def parameter_breakdown(self) -> dict[str, int]:
        """Parameter count (weights + biases) per top-level submodule."""
        return {name: sum(p.numel() for p in child.parameters()) for name, child in self.named_children()}

    def parameter_count(self) -> int:
        """Total parameters (weights + biases)."""
        return sum(self.parameter_breakdown().values())


def parameter_breakdown_for(config: ModelConfig) -> dict[str, int]:
    """Per-submodule parameter counts of the model ``config`` describes, without allocating its weights."""
    with torch.device("meta"):
        return SAEHD(config).parameter_breakdown()
