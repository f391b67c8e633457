"""Attention weights of one sentence pair as raw JSON and a grey-scale heatmap, like Bahdanau et al. (2015), Fig. 3.

alpha[i, j] is the weight target token i puts on source token j (rows = target, columns = source).
Drawn on a bare `Figure` (Agg canvas), so no display or pyplot state is involved.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from seqattn.errors import SeqattnError

CELL_INCHES = 0.3  # size of one source x target cell
MARGIN_INCHES = 1.5  # room for tick labels and the colour bar


def save_alignment(
    alpha: Tensor | np.ndarray, src_tokens: list[str], tgt_tokens: list[str], path_stem: Path
) -> tuple[Path, Path]:
    """Write `path_stem.json` and `path_stem.png`; return their paths (json, png)."""
    if isinstance(alpha, Tensor):
        alpha = alpha.detach().cpu().double().numpy()
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.shape != (len(tgt_tokens), len(src_tokens)):
        raise ValueError(
            f"alpha has shape {alpha.shape} but the tokens give (target, source) = "
            f"({len(tgt_tokens)}, {len(src_tokens)})"
        )
    path_stem = Path(path_stem)
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, png_path = (path_stem.with_name(path_stem.name + ext) for ext in (".json", ".png"))
    data = {"source": list(src_tokens), "target": list(tgt_tokens), "alpha": alpha.tolist()}
    json_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    fig = Figure(figsize=(MARGIN_INCHES + CELL_INCHES * len(src_tokens), MARGIN_INCHES + CELL_INCHES * len(tgt_tokens)))
    ax = fig.add_subplot()
    image = ax.imshow(alpha, cmap="gray", vmin=0.0, vmax=1.0)  # black = 0, white = 1, as in the paper
    ax.set_xticks(range(len(src_tokens)), labels=src_tokens, rotation=90)
    ax.set_yticks(range(len(tgt_tokens)), labels=tgt_tokens)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    fig.colorbar(image, ax=ax)
    fig.savefig(png_path, bbox_inches="tight")
    return json_path, png_path


def load_alignment(path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """Read a file written by `save_alignment` back as (alpha [target, source], source tokens, target tokens)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        source, target = data["source"], data["target"]
        return np.asarray(data["alpha"], dtype=np.float64).reshape(len(target), len(source)), source, target
    except FileNotFoundError:
        raise SeqattnError(f"{path}: alignment file not found; check the path") from None
    except (KeyError, TypeError, ValueError) as err:
        raise SeqattnError(f"{path}: not an alignment file written by save_alignment ({err!r})") from None
