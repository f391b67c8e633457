"""Squeeze-and-Excitation blocks in torchvision ResNets (Hu et al. 2018, "Squeeze-and-Excitation
Networks", sec. 3 and the integration variants of Fig. 5 / Table 14)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from seqattn.errors import SeqattnError

if TYPE_CHECKING:  # torchvision is imported where a network is built (see torchvision_cnn.py)
    from torchvision.models.resnet import BasicBlock, Bottleneck

VARIANTS = ("standard", "pre", "post", "identity")


class SqueezeExcitation(nn.Module):
    """x~_c = s_c * u_c (eq. 4) with s = F_ex(z, W) = sigmoid(W2 delta(W1 z)) (eq. 3) and
    z_c = F_sq(u_c) = the mean of u_c over all positions (eq. 2); W1 reduces C to C / r.

    W1 and W2 carry biases (the paper omits them from eq. 3 "to simplify notation"; the released
    models have them) and keep PyTorch's default initialisation, as the paper trains from scratch:
    a new block starts near s = 0.5, not at the identity.
    """

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.W1 = nn.Linear(channels, max(1, channels // reduction))
        self.W2 = nn.Linear(max(1, channels // reduction), channels)

    def forward(self, u: Tensor) -> Tensor:
        z = u.mean(dim=(2, 3))  # squeeze [B, C]
        s = self.W2(self.W1(z).relu()).sigmoid()  # excitation [B, C]
        return u * s[:, :, None, None]  # [B, C, H, W]


class SEBlock(nn.Module):
    """A torchvision BasicBlock/Bottleneck with SE placed as in Fig. 5 (F = the residual branch,
    shortcut = identity or the block's projection):

        standard: relu(SE(F(x)) + shortcut(x))
        pre:      relu(F(SE(x)) + shortcut(x))     SE on the residual unit's input
        post:     SE(relu(F(x) + shortcut(x)))     after the addition (and its ReLU)
        identity: relu(F(x) + SE(shortcut(x)))     on the identity branch, parallel to F
    """

    def __init__(self, block: BasicBlock | Bottleneck, variant: str, reduction: int) -> None:
        super().__init__()
        self.block = block
        self.variant = variant
        channels = block.conv1.in_channels if variant == "pre" else _out_channels(block)
        self.se = SqueezeExcitation(channels, reduction)

    def residual(self, x: Tensor) -> Tensor:
        """F(x): the block's conv-BN stack without the shortcut and the final ReLU."""
        b = self.block
        out = b.relu(b.bn1(b.conv1(x)))
        if _is_bottleneck(b):
            out = b.relu(b.bn2(b.conv2(out)))
            return b.bn3(b.conv3(out))
        return b.bn2(b.conv2(out))

    def shortcut(self, x: Tensor) -> Tensor:
        return x if self.block.downsample is None else self.block.downsample(x)

    def forward(self, x: Tensor) -> Tensor:
        relu = self.block.relu
        if self.variant == "standard":
            return relu(self.se(self.residual(x)) + self.shortcut(x))
        if self.variant == "pre":
            return relu(self.residual(self.se(x)) + self.shortcut(x))
        if self.variant == "post":
            return self.se(relu(self.residual(x) + self.shortcut(x)))
        return relu(self.residual(x) + self.se(self.shortcut(x)))  # identity


def _is_bottleneck(block: BasicBlock | Bottleneck) -> bool:
    """Bottleneck: 1x1, 3x3, 1x1 convolutions (conv1..conv3); BasicBlock: two 3x3 (conv1, conv2)."""
    return hasattr(block, "conv3")


def _out_channels(block: BasicBlock | Bottleneck) -> int:
    return (block.bn3 if _is_bottleneck(block) else block.bn2).num_features


def add_se(resnet: nn.Module, variant: str, reduction: int) -> None:
    """Wrap every residual block of a torchvision ResNet (or its trunk: layer1..layer4) in SEBlock."""
    if variant not in VARIANTS:
        raise SeqattnError(f"backbone.se_variant: unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    if reduction < 1:
        raise SeqattnError(f"backbone.se_reduction: must be a positive integer, got {reduction}")
    for stage in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
        for i, block in enumerate(stage):
            stage[i] = SEBlock(block, variant, reduction)
