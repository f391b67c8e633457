"""CNN image encoders ("backbones") for captioning and the CIFAR-10 backbone check.

    backbone = build_backbone(cfg.backbone)         # normalised images -> [B, D, h, w]
    a = annotations(backbone(images), cfg.backbone.grid)   # [B, L, D]
    classifier = build_classifier(cfg.backbone, 10)  # images -> logits [B, 10]

Names: resnet18..152 and vgg16 (torchvision), se-resnet18/34/50 (Hu et al. 2018),
efficientnet-lite0, attention56 / attention92 / attention-cifar (Wang et al. 2017).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from seqattn.errors import SeqattnError
from seqattn.modules.backbones.base import Backbone, Classifier, annotations
from seqattn.modules.backbones.efficientnet import build_efficientnet
from seqattn.modules.backbones.residual_attention import LAYOUTS as ATTENTION_LAYOUTS
from seqattn.modules.backbones.residual_attention import build_attention_net
from seqattn.modules.backbones.torchvision_cnn import TORCHVISION_NAMES, build_torchvision

if TYPE_CHECKING:  # modules/ never imports the config at run time: it takes any object with these fields
    from seqattn.config import BackboneConfig

NAMES = (*TORCHVISION_NAMES, "efficientnet-lite0", *ATTENTION_LAYOUTS)


def build_backbone(cfg: BackboneConfig) -> Backbone:
    """The CNN named by cfg.name, with cfg.pretrained weights, frozen when cfg.freeze."""
    if cfg.name in TORCHVISION_NAMES:
        return build_torchvision(cfg)
    if cfg.name == "efficientnet-lite0":
        return build_efficientnet(cfg)
    if cfg.name in ATTENTION_LAYOUTS:
        return build_attention_net(cfg)
    raise SeqattnError(f"backbone.name: unknown backbone {cfg.name!r}; known: {', '.join(NAMES)}")


def build_classifier(cfg: BackboneConfig, num_classes: int) -> Classifier:
    """build_backbone(cfg) + global average pooling + Linear: images -> logits [B, num_classes]."""
    return Classifier(build_backbone(cfg), num_classes)


__all__ = ["NAMES", "Backbone", "Classifier", "annotations", "build_backbone", "build_classifier"]
