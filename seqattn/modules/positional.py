"""Token embeddings with sinusoidal positions, the input of a Transformer stack (Vaswani et al. 2017, sec. 3.4-3.5).

    PE(pos, 2i) = sin(pos / 10000^{2i/d_model}),  PE(pos, 2i+1) = cos(pos / 10000^{2i/d_model})
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqattn.modules.dropout import Dropout


def sinusoidal_encoding(positions: Tensor, d_model: int) -> Tensor:
    """positions [...] (integers) -> PE [..., d_model]: sines at even, cosines at odd dimensions."""
    inv_freq = torch.exp(torch.arange(0, d_model, 2, device=positions.device) * (-math.log(10000.0) / d_model))
    angles = positions.unsqueeze(-1).float() * inv_freq  # pos / 10000^{2i/d_model} [..., d_model / 2]
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)


class PositionalEmbedding(nn.Module):
    """dropout(E x * sqrt(d_model) + PE(pos)): embeddings scaled by sqrt(d_model) (sec. 3.4) plus
    positions (sec. 3.5), with dropout on the sum (sec. 5.4). E starts as N(0, d_model^-1/2), so
    the scaled embeddings and PE are of one size, and E can double as the output projection."""

    def __init__(self, vocab_size: int, d_model: int, pad_id: int, dropout: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.tokens = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        nn.init.normal_(self.tokens.weight, std=d_model**-0.5)
        with torch.no_grad():
            self.tokens.weight[pad_id].zero_()
        self.dropout = Dropout(dropout)

    def forward(self, tokens: Tensor, start: int = 0) -> Tensor:
        """tokens [B, T] at positions start .. start + T - 1 -> [B, T, d_model]."""
        positions = torch.arange(start, start + tokens.size(1), device=tokens.device)  # [T]
        pe = sinusoidal_encoding(positions, self.d_model)  # [T, d_model]
        return self.dropout(self.tokens(tokens) * math.sqrt(self.d_model) + pe)
