"""Attention mechanisms behind one interface (see base.Attention)."""
from seqattn.modules.attention.additive import AdditiveAttention
from seqattn.modules.attention.base import Attention

__all__ = ["Attention", "AdditiveAttention"]
