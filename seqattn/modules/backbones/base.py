"""The image-encoder interface: a CNN trunk giving a feature map, and the L x D annotation grid
(Xu et al. 2015, sec. 3.1.1: a = {a_1, ..., a_L}, a_i in R^D) taken from it."""
from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.errors import SeqattnError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Backbone(nn.Module):
    """normalised images [B, 3, H, W] -> feature map [B, D, h, w], D = out_channels.

    `mean`/`std` are the per-channel input normalisation the CNN was trained with. A frozen
    backbone has no trainable parameters and stays in eval mode (batch-norm statistics fixed)
    even inside a model put in training mode.
    """

    def __init__(self, trunk: nn.Module, out_channels: int, mean: tuple[float, float, float] = IMAGENET_MEAN,
                 std: tuple[float, float, float] = IMAGENET_STD, frozen: bool = False) -> None:
        super().__init__()
        self.trunk = trunk
        self.out_channels = out_channels
        self.mean, self.std = mean, std
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> Backbone:
        return super().train(mode and not self.frozen)

    def forward(self, images: Tensor) -> Tensor:
        return self.trunk(images)  # [B, D, h, w]


def annotations(features: Tensor, grid: int) -> Tensor:
    """feature map [B, D, h, w] -> annotation vectors [B, L, D] with L = grid * grid (adaptive
    average pooling; grid 0 keeps the CNN's own h * w positions, row by row)."""
    if grid > 0:
        features = F.adaptive_avg_pool2d(features, grid)  # [B, D, grid, grid]
    return features.flatten(2).transpose(1, 2)  # [B, L, D]


class Classifier(nn.Module):
    """Backbone + global average pooling + Linear: images [B, 3, H, W] -> logits [B, num_classes]."""

    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        pooled = self.backbone(images).mean(dim=(2, 3))  # [B, D]
        return self.fc(pooled)  # [B, num_classes]


def load_weights(net: nn.Module, path: str, head: str, name: str) -> None:
    """Load the state dict in file `path` into `net`, backbone `name`'s trunk (no classifier).

    The file may hold the whole original network (its classifier keys, starting with `head`, are
    skipped), a Backbone (keys `trunk.*`) or a build_classifier model (`backbone.trunk.*`, `fc.*`),
    alone or as the "model" of a seqattn checkpoint (a classifier recipe's best.pt).
    """
    file = Path(path)
    if not file.is_file():
        raise SeqattnError(f"backbone.pretrained: weights file {path} not found; give none, imagenet or a .pth path")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file: pickle, zip or torch errors
        raise SeqattnError(f"backbone.pretrained: {path} is not a readable PyTorch state dict ({err})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):  # a seqattn checkpoint (`classify`, `train`)
        state = state["model"]
    if not isinstance(state, dict):
        raise SeqattnError(f"backbone.pretrained: {path} holds a {type(state).__name__}, not a state dict")
    state = {re.sub(r"^(backbone\.)?trunk\.", "", k): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith((head, "fc."))}
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        detail = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise SeqattnError(f"backbone.pretrained: {path} does not fit {name}: {detail}") from None
    if missing or unexpected:
        raise SeqattnError(
            f"backbone.pretrained: {path} does not fit {name}: missing keys {_few(missing)}, "
            f"unexpected keys {_few(unexpected)}; is backbone.name (and backbone.se) the network that was saved?")


def _few(keys: list[str]) -> str:
    return "[" + ", ".join(keys[:3]) + (f", ... ({len(keys)} in all)" if len(keys) > 3 else "") + "]"
