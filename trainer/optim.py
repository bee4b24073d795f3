"""Optimisers: AdaBelief (DeepFaceLab's default) with learning-rate dropout, plus Adam and RMSprop."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from dfl_vfx.errors import DflError

LR_DROPOUT_KEEP = 0.3  # DeepFaceLab's lr_dropout: each element's update is kept with this probability
LR_COS_PERIOD = 500  # iterations of the cosine learning-rate cycle that comes with lr_dropout


class AdaBelief(torch.optim.Optimizer):
    """AdaBelief (Zhuang et al., 2020): Adam whose second moment tracks (g - m)^2, the 'belief' in the gradient.

    With ``lr_dropout`` each element's update is kept with probability 0.3 (drawn from the optimiser's own
    generator, saved in its state for exact resumes) and the learning rate follows a cosine cycle of 500 steps.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 5e-5,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-7,
        lr_dropout: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))
        self.lr_dropout = lr_dropout
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["dfl"] = {"steps": self.steps, "generator": self.generator.get_state()}
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        extra = state_dict.pop("dfl", None)
        super().load_state_dict(state_dict)
        if extra is not None:
            self.steps = int(extra["steps"])
            self.generator.set_state(extra["generator"])

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's signature
        self.steps += 1
        scale = 1.0
        if self.lr_dropout:
            scale = 0.5 * (1.0 + math.cos(2.0 * math.pi * self.steps / LR_COS_PERIOD))
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.float()
                state = self.state[p]
                if not state:
                    state["m"] = torch.zeros_like(p, dtype=torch.float32)
                    state["s"] = torch.zeros_like(p, dtype=torch.float32)
                m, s = state["m"], state["s"]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                s.mul_(beta2).addcmul_(grad - m, grad - m, value=1 - beta2).add_(group["eps"])
                m_hat = m / (1 - beta1**self.steps)
                s_hat = s / (1 - beta2**self.steps)
                update = m_hat / (s_hat.sqrt() + group["eps"])
                if self.lr_dropout:
                    keep = torch.rand(update.shape, generator=self.generator) < LR_DROPOUT_KEEP
                    update = update * keep.to(update.device, update.dtype)
                p.add_(update.to(p.dtype), alpha=-group["lr"] * scale)


def make_optimizer(kind: str, params: Iterable[torch.nn.Parameter], lr: float, lr_dropout: bool,
                   seed: int) -> torch.optim.Optimizer:
    """The optimiser named in the config."""
    if kind == "adabelief":
        return AdaBelief(params, lr=lr, lr_dropout=lr_dropout, seed=seed)
    if lr_dropout:
        raise DflError(f"lr_dropout needs optimizer adabelief, not {kind}")
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, eps=1e-7)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    raise DflError(f"optimizer {kind!r} is unknown; use adabelief, adam or rmsprop")
