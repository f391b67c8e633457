"""torchvision ResNets and VGG-16 as image encoders, optionally with SE blocks (se.py).

The feature map is the last convolutional stage: ResNet's layer4 ([B, 512 or 2048, H/32, W/32])
and VGG-16's conv5_3 after its ReLU, before the last max pooling ([B, 512, H/16, W/16]), the
14 x 14 x 512 map of Xu et al. 2015 at 224 x 224.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from torch import nn

from seqattn.errors import SeqattnError
from seqattn.modules.backbones.base import Backbone, load_weights
from seqattn.modules.backbones.se import add_se

if TYPE_CHECKING:  # modules/ never imports the config at run time: it takes any object with these fields
    from seqattn.config import BackboneConfig

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
SE_RESNETS = ("se-resnet18", "se-resnet34", "se-resnet50")
TORCHVISION_NAMES = (*RESNETS, "vgg16", *SE_RESNETS)
RESNET_TRUNK = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
VGG16_CONV5_3 = 30  # features[:30] ends with conv5_3 and its ReLU


def build_torchvision(cfg: BackboneConfig) -> Backbone:
    """resnetN / vgg16 with torchvision's ImageNet weights, a local file or random init; se-resnetN.

    SE blocks: `backbone.se=true` adds them to resnetN after its weights are loaded (a file then
    holds a plain ResNet); se-resnetN has them from the start (a file then holds the SE-ResNet).
    """
    arch = cfg.name.removeprefix("se-")
    se_net = cfg.name in SE_RESNETS
    if arch == "vgg16" and cfg.se:
        raise SeqattnError("backbone.se: SE blocks go into ResNets only; set backbone.se=false for vgg16")
    if cfg.se and cfg.freeze and not se_net:
        raise SeqattnError("backbone.se=true adds untrained SE blocks that backbone.freeze=true would keep "
                           "random: set backbone.freeze=false")
    if se_net and cfg.pretrained == "imagenet":
        raise SeqattnError(f"backbone.pretrained: torchvision has no ImageNet {cfg.name}; use backbone.name={arch} "
                           "with backbone.se=true to add SE blocks to the ImageNet ResNet")
    if cfg.cifar_stem and (arch == "vgg16" or cfg.pretrained == "imagenet"):
        raise SeqattnError("backbone.cifar_stem: only for ResNets trained at CIFAR size, not vgg16 or ImageNet weights")
    net = _torchvision_net(arch, cfg.pretrained == "imagenet")
    if cfg.cifar_stem:
        # He et al. 2016, sec. 4.2: at 32 x 32 the ImageNet stem (7x7/2 conv, 3x3/2 max pool) leaves layer4 at 1 x 1
        net.conv1 = nn.Conv2d(3, net.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    if arch == "vgg16":
        trunk = nn.Sequential(OrderedDict(features=net.features[:VGG16_CONV5_3]))
        out_channels, head = 512, "classifier."
    else:
        trunk = nn.Sequential(OrderedDict((name, getattr(net, name)) for name in RESNET_TRUNK))
        out_channels, head = net.fc.in_features, "fc."
    if se_net:
        add_se(trunk, cfg.se_variant, cfg.se_reduction)
    if cfg.pretrained not in ("none", "imagenet"):
        load_weights(trunk, cfg.pretrained, head, cfg.name)
    if cfg.se and not se_net:
        add_se(trunk, cfg.se_variant, cfg.se_reduction)
    return Backbone(trunk, out_channels, frozen=cfg.freeze)


def _torchvision_net(arch: str, imagenet: bool) -> nn.Module:
    from torchvision import models  # here, not at the top: importing torchvision loads torch._dynamo (~165 MiB)

    if not imagenet:
        return models.get_model(arch)
    try:
        return models.get_model(arch, weights="IMAGENET1K_V1")
    except OSError as err:  # offline: URLError from the download
        raise SeqattnError(f"backbone.pretrained=imagenet: cannot download torchvision's {arch} weights ({err}); "
                           "pass backbone.pretrained=/path/to/weights.pth (a saved state dict) instead") from None
