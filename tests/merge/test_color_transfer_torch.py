"""The torch rct equals the NumPy one (on the CPU here; the same code runs on CUDA tensors)."""

import numpy as np
import pytest
import skimage.data
import torch

from dfl_vfx.merge.color_transfer import transfer_color as transfer_numpy
from dfl_vfx.merge.color_transfer_torch import transfer_color


def _faces() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    target = skimage.data.astronaut()[100:228, 180:308].astype(np.float32) / 255.0
    source = skimage.data.chelsea()[50:178, 100:228].astype(np.float32) / 255.0 * 1.4 - 0.05
    mask = np.zeros((128, 128), np.float32)
    mask[20:110, 30:100] = 1.0
    mask[60:80, 10:30] = 0.5
    return target, source, mask


def test_rct_matches_numpy() -> None:
    target, source, mask = _faces()
    expected = transfer_numpy("rct", target, source, mask, mask)
    ours = transfer_color("rct", torch.from_numpy(target), torch.from_numpy(source), torch.from_numpy(mask))
    np.testing.assert_allclose(ours.numpy(), expected, atol=2e-5)
    assert not np.allclose(expected, target, atol=1e-2)  # the transfer did change the face


def test_none_copies_and_an_empty_mask_changes_nothing() -> None:
    target, source, _ = _faces()
    t = torch.from_numpy(target)
    assert torch.equal(transfer_color("none", t, torch.from_numpy(source), torch.ones(128, 128)), t)
    assert torch.equal(transfer_color("rct", t, torch.from_numpy(source), torch.zeros(128, 128)), t)
    with pytest.raises(ValueError, match="no torch form"):
        transfer_color("idt", t, t, torch.ones(128, 128))
