"""Attention mechanisms behind one interface (see base.Attention)."""
from seqattn.modules.attention.additive import AdditiveAttention
from seqattn.modules.attention.base import Attention
from seqattn.modules.attention.local import LocalAttention
from seqattn.modules.attention.luong import ConcatAttention, DotAttention, GeneralAttention
from seqattn.modules.attention.multihead import MultiHeadAttention

__all__ = [
    "Attention", "AdditiveAttention", "ConcatAttention", "DotAttention", "GeneralAttention", "LocalAttention",
    "MultiHeadAttention",
]
