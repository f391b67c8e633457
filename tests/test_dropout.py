"""Dropout from 16-bit draws (seqattn.modules.dropout): its keep rate, scale, gradient and
reproducibility from torch's generator."""
from __future__ import annotations

import math

import pytest
import torch

from seqattn.modules.dropout import LEVELS, Dropout, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_keep_rate_is_one_minus_p_rounded_to_16_bits(p: float) -> None:
    torch.manual_seed(0)
    n = 2**22
    kept = keep_mask(torch.Size([n]), p, torch.device("cpu")).double().mean().item()
    want = 1 - round(p * LEVELS) / LEVELS
    assert abs(kept - want) < 5 * math.sqrt(want * (1 - want) / n)  # five standard deviations


def test_kept_elements_are_scaled_to_keep_the_expectation() -> None:
    torch.manual_seed(0)
    x = torch.rand(1000, 300) + 0.5
    y = dropout(x, 0.1, training=True)
    kept = y != 0
    scale = 1 / (1 - round(0.1 * LEVELS) / LEVELS)
    torch.testing.assert_close(y[kept], x[kept] * scale)
    assert abs(y.sum().item() / x.sum().item() - 1) < 0.01


def test_gradient_is_the_mask_times_the_scale() -> None:
    torch.manual_seed(1)
    x = torch.randn(64, 48, requires_grad=True)
    y = dropout(x, 0.25, training=True)
    y.sum().backward()
    scale = 1 / (1 - round(0.25 * LEVELS) / LEVELS)
    torch.testing.assert_close(x.grad, (y != 0).float() * scale)


def test_same_generator_state_gives_the_same_mask_and_bf16_stays_bf16() -> None:
    x = torch.randn(37, 29).bfloat16()  # an odd number of elements: the last 64-bit draw is cut
    torch.manual_seed(5)
    a = dropout(x, 0.2, training=True)
    torch.manual_seed(5)
    b = dropout(x, 0.2, training=True)
    assert a.dtype == torch.bfloat16 and torch.equal(a, b)
    assert not torch.equal(a, dropout(x, 0.2, training=True))


def test_identity_outside_training_or_at_zero_and_zeros_at_one() -> None:
    x = torch.randn(5, 7)
    module = Dropout(0.3).eval()
    assert module(x) is x and dropout(x, 0.0, training=True) is x
    assert torch.equal(dropout(x, 1.0, training=True), torch.zeros_like(x))
    assert repr(module) == "Dropout(p=0.3)"
