"""Where a captioner looked: each word's attention over the L = grid x grid locations, upsampled and
laid over the image, as in Xu et al. (2015), Fig. 2-3; with the weights as JSON.

Drawn on a bare `Figure` (Agg canvas), so no display or pyplot state is involved.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from seqattn.errors import SeqattnError

PANEL_INCHES = 2.0  # one word's panel
COLUMNS = 5


def upsample(alpha: Tensor, size: int) -> np.ndarray:
    """alpha [T, L] over a square grid -> [T, size, size] maps, bilinear (each map keeps its max at 1 when drawn)."""
    T, L = alpha.shape
    grid = math.isqrt(L)
    if grid * grid != L:
        raise SeqattnError(f"attention over {L} locations is not a square grid; figures need backbone.grid > 0")
    maps = alpha.float().reshape(T, 1, grid, grid)  # [T, 1, g, g]
    return F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()


def save_caption_attention(image: Image.Image, words: list[str], alpha: Tensor, path_stem: Path) -> tuple[Path, Path]:
    """`image` as the model saw it (square crop), `words` (EOS included when the caption ended),
    alpha [len(words), L] -> `path_stem.json` and `path_stem.png` (paths returned)."""
    if alpha.dim() != 2 or alpha.size(0) != len(words):
        raise ValueError(f"alpha has shape {tuple(alpha.shape)} but there are {len(words)} words")
    path_stem = Path(path_stem)
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, png_path = (path_stem.with_name(path_stem.name + ext) for ext in (".json", ".png"))
    json_path.write_text(json.dumps({"words": words, "alpha": alpha.double().tolist()}), encoding="utf-8")

    size = image.size[0]
    maps = upsample(alpha.detach().cpu(), size)  # [T, size, size]
    rows = math.ceil((len(words) + 1) / COLUMNS)
    fig = Figure(figsize=(PANEL_INCHES * COLUMNS, PANEL_INCHES * rows))
    pixels = np.asarray(image)
    for k in range(len(words) + 1):
        ax = fig.add_subplot(rows, COLUMNS, k + 1)
        ax.imshow(pixels)
        if k:  # panel k: word k-1 with its attention, brightest where it looked
            ax.imshow(maps[k - 1] / max(maps[k - 1].max(), 1e-12), cmap="gray", alpha=0.6, vmin=0.0, vmax=1.0)
            ax.set_title(words[k - 1], fontsize=10)
        ax.axis("off")
    fig.savefig(png_path, bbox_inches="tight")
    return json_path, png_path

