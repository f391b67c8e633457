"""Attention pictures: alignment heatmaps (Bahdanau et al. 2015, Fig. 3), caption attention over
images (Xu et al. 2015, Fig. 2-3) and a memory network's hops over a story (Sukhbaatar et al. 2015,
Fig. 2), each with its raw weights as JSON."""
from __future__ import annotations

from seqattn.visualisation.caption_attention import save_caption_attention
from seqattn.visualisation.heatmap import load_alignment, save_alignment
from seqattn.visualisation.memory_attention import save_hop_attention

__all__ = ["load_alignment", "save_alignment", "save_caption_attention", "save_hop_attention"]
