"""A memory network's attention over a story, every hop, as in Sukhbaatar et al. (2015), Fig. 2:
one row per story sentence (supporting facts marked *), one column per hop, with the raw weights as JSON.
Drawn on a bare `Figure` (Agg canvas), so no display or pyplot state is involved.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

ROW_INCHES, COLUMN_INCHES = 0.3, 0.6
SUPPORT = "*"  # marks a supporting fact's row


def save_hop_attention(
    weights: Tensor, sentences: list[str], question: str, answer: str, support: list[int], path_stem: Path,
) -> tuple[Path, Path]:
    """weights [K, M] (hop k's weight on sentence i) -> `path_stem.json` and `path_stem.png`."""
    p = weights.detach().cpu().double().numpy()
    if p.shape[1] != len(sentences):
        raise ValueError(f"weights have {p.shape[1]} memory columns but there are {len(sentences)} sentences")
    path_stem = Path(path_stem)
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, png_path = (path_stem.with_name(path_stem.name + ext) for ext in (".json", ".png"))
    data = {"story": sentences, "question": question, "answer": answer, "support": support, "hops": p.tolist()}
    json_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    labels = [f"{SUPPORT} {s}" if i in support else s for i, s in enumerate(sentences)]
    fig = Figure(figsize=(4 + COLUMN_INCHES * p.shape[0], 1.5 + ROW_INCHES * len(sentences)))
    ax = fig.add_subplot()
    image = ax.imshow(p.T, cmap="Blues", vmin=0.0, vmax=max(1.0, float(np.max(p, initial=0.0))), aspect="auto")
    ax.set_xticks(range(p.shape[0]), labels=[f"hop {k + 1}" for k in range(p.shape[0])])
    ax.set_yticks(range(len(sentences)), labels=labels)
    for i in support:
        ax.get_yticklabels()[i].set_fontweight("bold")
    ax.xaxis.tick_top()
    ax.set_title(f"{question}  ->  {answer}", pad=24)
    fig.colorbar(image, ax=ax)
    fig.savefig(png_path, bbox_inches="tight")
    return json_path, png_path
