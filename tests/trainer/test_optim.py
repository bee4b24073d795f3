"""AdaBelief: converges, matches its update rule, lr_dropout is deterministic and resumable."""

import torch

from trainer.optim import AdaBelief, make_optimizer


def test_first_step_follows_the_update_rule() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = AdaBelief([p], lr=0.1, eps=1e-7)
    p.grad = torch.tensor([0.5, -1.0])
    opt.step()
    g = torch.tensor([0.5, -1.0])
    m = 0.1 * g
    s = 0.001 * (g - m) ** 2 + 1e-7
    expected = torch.tensor([1.0, -2.0]) - 0.1 * (m / 0.1) / ((s / 0.001).sqrt() + 1e-7)
    torch.testing.assert_close(p.detach(), expected)


def test_minimises_a_quadratic() -> None:
    torch.manual_seed(0)
    target = torch.randn(32)
    p = torch.nn.Parameter(torch.zeros(32))
    opt = AdaBelief([p], lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        ((p - target) ** 2).sum().backward()
        opt.step()
    assert (p - target).abs().max() < 0.05


def test_lr_dropout_is_deterministic_across_a_save_and_load() -> None:
    def run(steps: int, resume_from: dict | None = None) -> tuple[torch.Tensor, dict]:
        p = torch.nn.Parameter(torch.ones(64))
        opt = AdaBelief([p], lr=0.01, lr_dropout=True, seed=3)
        if resume_from:
            p.data.copy_(resume_from["p"])
            opt.load_state_dict(resume_from["opt"])
        for _ in range(steps):
            opt.zero_grad()
            (p**2).sum().backward()
            opt.step()
        return p.detach().clone(), {"p": p.detach().clone(), "opt": opt.state_dict()}

    straight, _ = run(10)
    _, half = run(5)
    resumed, _ = run(5, half)
    torch.testing.assert_close(resumed, straight, rtol=0, atol=0)


def test_lr_dropout_keeps_about_30_percent_of_updates() -> None:
    p = torch.nn.Parameter(torch.ones(10000))
    opt = AdaBelief([p], lr=0.01, lr_dropout=True)
    p.grad = torch.ones(10000)
    opt.step()
    moved = (p.detach() != 1.0).float().mean().item()
    assert 0.27 < moved < 0.33


def test_factory() -> None:
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimizer("adam", params, 1e-4, False, 0), torch.optim.Adam)
    assert isinstance(make_optimizer("rmsprop", params, 1e-4, False, 0), torch.optim.RMSprop)
