"""Residual Attention Network (Wang et al. 2017, "Residual Attention Network for Image
Classification"): stacked attention modules, each a trunk branch T(x) reweighted by a bottom-up
top-down soft mask M(x), H(x) = (1 + M(x)) * T(x) (attention residual learning, eq. 3)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch.nn.functional as F
from torch import Tensor, nn

from seqattn.errors import SeqattnError
from seqattn.modules.backbones.base import Backbone, load_weights

if TYPE_CHECKING:  # modules/ never imports the config at run time: it takes any object with these fields
    from seqattn.config import BackboneConfig

P, T, R = 1, 2, 1  # residual units before/after the branches, in the trunk, between poolings (sec. 3.4)
LAYOUTS = {"attention56": (1, 1, 1), "attention92": (1, 2, 3), "attention-cifar": (1, 1, 1)}  # modules per stage
ACTIVATIONS = ("mixed", "channel", "spatial")
EPS = 1e-6


class ResidualUnit(nn.Module):
    """Pre-activation bottleneck unit (He et al. 2016): BN-ReLU-1x1, BN-ReLU-3x3 (stride),
    BN-ReLU-1x1 to out_channels, plus the input, or a 1x1 projection of the pre-activated input
    when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        mid = out_channels // 4
        self.bn1, self.conv1 = nn.BatchNorm2d(in_channels), nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(mid), nn.Conv2d(mid, mid, 3, stride, padding=1, bias=False)
        self.bn3, self.conv3 = nn.BatchNorm2d(mid), nn.Conv2d(mid, out_channels, 1, bias=False)
        self.projection = None
        if stride != 1 or in_channels != out_channels:
            self.projection = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pre = self.bn1(x).relu()
        out = self.conv1(pre)
        out = self.conv2(self.bn2(out).relu())
        out = self.conv3(self.bn3(out).relu())
        return out + (x if self.projection is None else self.projection(pre))


def units(channels: int, n: int) -> nn.Sequential:
    return nn.Sequential(*(ResidualUnit(channels, channels) for _ in range(n)))


class MaskActivation(nn.Module):
    """The soft mask's normalisation (sec. 3.3) over x_{i,c} (position i, channel c):
    mixed f1 = sigmoid(x_{i,c}); channel f2 = x_{i,c} / ||x_i|| (L2 norm over channels);
    spatial f3 = sigmoid((x_{i,c} - mean_c) / std_c) (mean, std over the positions of channel c)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: Tensor) -> Tensor:  # [B, C, H, W]
        if self.kind == "mixed":
            return x.sigmoid()
        if self.kind == "channel":
            return x / x.norm(dim=1, keepdim=True).clamp_min(EPS)
        mean = x.mean(dim=(2, 3), keepdim=True)  # [B, C, 1, 1]
        std = x.std(dim=(2, 3), keepdim=True, correction=0)
        return ((x - mean) / (std + EPS)).sigmoid()


class SoftMaskBranch(nn.Module):
    """M(x): `depth` max poolings, R units after each and a skip unit at each scale (bottom-up),
    2R units at the lowest resolution, then bilinear upsampling back with the skips added and R
    units at each scale (top-down), and BN-ReLU-1x1 conv twice before the activation (Fig. 3).
    depth 0 keeps the resolution: 2R units, the 1x1 convs and the activation."""

    def __init__(self, channels: int, depth: int, activation: str) -> None:
        super().__init__()
        self.depth = depth
        self.down = nn.ModuleList(units(channels, R) for _ in range(depth - 1))
        self.skips = nn.ModuleList(units(channels, 1) for _ in range(depth - 1))
        self.bottom = units(channels, 2 * R)
        self.up = nn.ModuleList(units(channels, R) for _ in range(depth - 1))
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels, 1, bias=False))
        self.activation = MaskActivation(activation)

    def forward(self, x: Tensor) -> Tensor:
        sizes, skips = [], []
        for k in range(self.depth):  # bottom-up: level k -> k + 1
            sizes.append(x.shape[-2:])
            x = F.max_pool2d(x, 3, stride=2, padding=1)
            if k < self.depth - 1:
                x = self.down[k](x)
                skips.append(self.skips[k](x))
        x = self.bottom(x)
        for k in reversed(range(self.depth)):  # top-down: level k + 1 -> k
            x = F.interpolate(x, size=sizes[k], mode="bilinear", align_corners=False)
            if k > 0:
                x = self.up[k - 1](x + skips[k - 1])
        return self.activation(self.head(x))  # [B, C, H, W]


class AttentionModule(nn.Module):
    """P units, then trunk T(x) (T units) and soft mask M(x) on their output, merged as
    (1 + M(x)) * T(x) (attention residual learning, eq. 3) or M(x) * T(x) (naive), then P units."""

    def __init__(self, channels: int, depth: int, residual: bool, activation: str) -> None:
        super().__init__()
        self.residual = residual
        self.pre = units(channels, P)
        self.trunk = units(channels, T)
        self.mask = SoftMaskBranch(channels, depth, activation)
        self.post = units(channels, P)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pre(x)
        trunk, mask = self.trunk(x), self.mask(x)  # T(x), M(x) [B, C, H, W]
        return self.post((1 + mask) * trunk if self.residual else mask * trunk)


class ResidualAttentionNet(nn.Module):
    """Table 2 without the classifier: stem, three stages of [residual unit, attention modules],
    three residual units, a final BN-ReLU. ImageNet (224 -> 7 x 7 x 2048): conv7x7/2 + max pool,
    widths 256..2048, mask poolings 3/2/1 down to 7 x 7. CIFAR (32 -> 8 x 8 x 1024): conv3x3, no
    max pool, widths 128..1024, mask poolings 2/1/0 down to 8 x 8, last stage not strided."""

    def __init__(self, modules_per_stage: tuple[int, int, int], cifar: bool, residual: bool, activation: str) -> None:
        super().__init__()
        if cifar:
            stem: list[nn.Module] = [nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
            widths, depths, last_stride = (32, 128, 256, 512, 1024), (2, 1, 0), 1
        else:
            stem = [nn.Conv2d(3, 64, 7, 2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                    nn.MaxPool2d(3, stride=2, padding=1)]
            widths, depths, last_stride = (64, 256, 512, 1024, 2048), (3, 2, 1), 2
        self.stem = nn.Sequential(*stem)
        self.stages = nn.Sequential(*(
            nn.Sequential(ResidualUnit(widths[i], widths[i + 1], 1 if i == 0 else 2),
                          *(AttentionModule(widths[i + 1], depths[i], residual, activation) for _ in range(n)))
            for i, n in enumerate(modules_per_stage)))
        self.last = nn.Sequential(ResidualUnit(widths[3], widths[4], last_stride), units(widths[4], 2),
                                  nn.BatchNorm2d(widths[4]), nn.ReLU())
        self.out_channels = widths[4]

    def forward(self, images: Tensor) -> Tensor:
        return self.last(self.stages(self.stem(images)))  # [B, D, h, w]


def build_attention_net(cfg: BackboneConfig) -> Backbone:
    """attention56 / attention92 (ImageNet layout) or attention-cifar (Attention-56 layout, 32 x 32)."""
    if cfg.mask_activation not in ACTIVATIONS:
        raise SeqattnError(f"backbone.mask_activation: unknown {cfg.mask_activation!r}; known: {', '.join(ACTIVATIONS)}")
    if cfg.pretrained == "imagenet":
        raise SeqattnError(f"backbone.pretrained: there are no ImageNet weights for {cfg.name}; "
                           "give none or the path of a saved state dict")
    if cfg.se:
        raise SeqattnError(f"backbone.se: SE blocks go into ResNets only; set backbone.se=false for {cfg.name}")
    net = ResidualAttentionNet(LAYOUTS[cfg.name], cfg.name == "attention-cifar", cfg.attention_residual,
                               cfg.mask_activation)
    if cfg.pretrained != "none":
        load_weights(net, cfg.pretrained, "fc.", cfg.name)
    return Backbone(net, net.out_channels, frozen=cfg.freeze)
