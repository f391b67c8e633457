"""Annotation grids of a frozen CNN, computed once and cached on disk.

A frozen backbone gives every image the same features in every epoch, so the CNN runs once per image
and split; the grid a [N, L, D] is stored in float16 under a name that hashes everything it depends
on (backbone options and weights file, image size, grid, the images), so a changed option never
reads a stale cache.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from seqattn.config import BackboneConfig
from seqattn.data.images import image_batches, image_transform
from seqattn.errors import SeqattnError
from seqattn.modules.backbones import Backbone, annotations
from seqattn.serialization import load_checkpoint, save_checkpoint


def cache_key(cfg: BackboneConfig, images: Sequence[Path]) -> str:
    """A short hash of the backbone options (and weights file), the image size, grid and images."""
    options = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("cache_dir", "freeze")}
    weights = Path(cfg.pretrained)
    if weights.is_file():  # a local weights file: its size and time stand for its content
        stat = weights.stat()
        options["weights"] = [str(weights.resolve()), stat.st_size, stat.st_mtime_ns]
    text = json.dumps([options, [str(Path(p).resolve()) for p in images]], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


FEATURE_BATCH = 32  # images through the frozen CNN at once


@torch.inference_mode()
def compute_annotations(
    backbone: Backbone, images: Sequence[Path], image_size: int, grid: int, device: torch.device,
) -> Tensor:
    """Evaluation-transformed images through the CNN -> annotation grids a [N, L, D] (float16, CPU)."""
    backbone.eval()
    transform = image_transform(image_size, backbone.mean, backbone.std, train=False)
    grids = [annotations(backbone(x.to(device)), grid).half().cpu()  # each [b, L, D]
             for x in image_batches(images, transform, FEATURE_BATCH)]
    return torch.cat(grids)


def cached_annotations(
    backbone: Backbone, cfg: BackboneConfig, images: Sequence[Path], cache_dir: Path, name: str,
    device: torch.device, log: Callable[[str], None] = print,
) -> Tensor:
    """The annotation grids of `images` [N, L, D] from `cache_dir`, computed and written (atomically)
    the first time."""
    if not cfg.freeze:
        raise SeqattnError("backbone.freeze=false: a CNN that is trained has no fixed features to cache")
    path = Path(cache_dir) / f"{name}-{cache_key(cfg, images)}.pt"
    if path.is_file():
        grids = load_checkpoint(path)["annotations"]
        if grids.size(0) == len(images):
            log(f"{name}: {len(images)} annotation grids {tuple(grids.shape[1:])} from {path}")
            return grids
    log(f"{name}: running {cfg.name} over {len(images)} images (once; cached in {path})")
    grids = compute_annotations(backbone, images, cfg.image_size, cfg.grid, device)
    os.makedirs(path.parent, exist_ok=True)
    save_checkpoint({"annotations": grids}, path)
    return grids
