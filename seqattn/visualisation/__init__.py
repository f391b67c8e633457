"""Attention alignment heatmaps (Bahdanau et al. 2015, Fig. 3) and their raw data."""
from __future__ import annotations

from seqattn.visualisation.heatmap import load_alignment, save_alignment

__all__ = ["load_alignment", "save_alignment"]
