"""An image classifier (a backbone, global average pooling, Linear) behind the trainer's model
interface: `forward` gives Output(logits [B, classes], None), `loss` the summed cross-entropy of the
labels. It is no Seq2Seq: nothing is searched, so it has no encode or step."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from seqattn.config import BackboneConfig, ModelConfig
from seqattn.models.base import Guide, Output, TrainingHooks
from seqattn.modules.backbones import Classifier, build_backbone


class ImageClassifier(Classifier, TrainingHooks):
    """`src` is a batch of images [B, 3, H, W]; `src_mask` and `tgt_in` (nothing precedes a label) are
    unused. Its weights are a Classifier's (backbone.*, fc.*), which backbone.pretrained loads."""

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, need_alpha: bool = False) -> Output:
        return Output(super().forward(src), None)

    def nll(self, logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Summed cross-entropy of logits [B, classes] against labels [B]."""
        return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing, reduction="sum")

    def loss(self, out: Output, tgt_out: Tensor, label_smoothing: float, guide: Guide | None = None) -> Tensor:
        """Summed cross-entropy; `guide` is always None (no attention to guide: the config refuses
        train.guided_alignment for a classifier) and is taken for the trainer's one call of every model."""
        return self.nll(out.logits, tgt_out, label_smoothing)


def build_image_classifier(
    cfg: ModelConfig, src_vocab: int, num_classes: int, pad_id: int, bos_id: int, eos_id: int,
    backbone: BackboneConfig,
) -> ImageClassifier:
    """The registry's builder of arch `classifier`: tgt_vocab is the number of classes; the vocabulary
    sizes and token ids of the sequence models mean nothing here."""
    return ImageClassifier(build_backbone(backbone), num_classes)
