"""Image classification (the backbone check: Hu et al. 2018, Wang et al. 2017 on CIFAR-10): a
backbone trained from scratch, judged by top-1 accuracy on the test split, which serves as the
valid split. A batch is `classify.batch_size` images (src) and their labels (tgt_out)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from seqattn.config import Config, SearchConfig
from seqattn.data.batching import Batch
from seqattn.data.cifar import load_cifar10
from seqattn.errors import SeqattnError
from seqattn.models import build_model
from seqattn.models.classifier import ImageClassifier
from seqattn.precision import autocast
from seqattn.search import Hypothesis
from seqattn.tasks.base import Metric, Task, Validation


class ImageData:
    """A split of labelled images as the trainer walks it; images are read (and the training ones
    augmented) in this process, in batch order."""

    def __init__(self, images: Dataset, batch_size: int) -> None:
        self.images, self.batch_size = images, batch_size

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, batch_tokens: int, shuffle: bool, seed: int = 0) -> list[list[int]]:
        """Batches of batch_size images (batch_tokens is for text), in a shuffle seeded by `seed`."""
        n = len(self)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist() if shuffle else list(range(n))
        return [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]

    def batch(self, indices: list[int], tok: None = None) -> Batch:
        images, labels = zip(*(self.images[i] for i in indices))
        n = len(indices)
        return Batch(src=torch.stack(images), src_mask=torch.ones(n, 1, dtype=torch.bool),  # one location: the image
                     tgt_in=torch.zeros(n, 0, dtype=torch.long),  # nothing precedes the label
                     tgt_out=torch.tensor(labels), indices=indices, ntokens=n)


class ClassificationTask(Task):
    """No vocabularies: `classes` names the labels."""

    metric = Metric("accuracy", "accuracy", higher_is_better=True, fmt=".2%")

    def __init__(self, cfg: Config, classes: list[str]) -> None:
        super().__init__(cfg, None, None)
        self.classes = classes

    @classmethod
    def prepare(cls, cfg: Config, log=print, device: torch.device | None = None) -> ClassificationTask:
        check_config(cfg)
        train, test, classes = load_cifar10(cfg)
        task = cls(cfg, classes)
        task.train_data, task.valid_data = ImageData(train, cfg.classify.batch_size), ImageData(test, cfg.classify.batch_size)
        log(f"classification: {len(train)} training and {len(test)} test images (the valid split), "
            f"{len(task.train_data.batches(0, shuffle=False))} batches per epoch")
        return task

    @classmethod
    def from_run(cls, cfg: Config, folder: Path) -> ClassificationTask:
        """CIFAR-10's ten classes, in the archive's (sorted) order; the weights are in the checkpoint,
        so none are loaded into the backbone here."""
        cfg = dataclasses.replace(cfg, backbone=dataclasses.replace(cfg.backbone, pretrained="none"))
        return cls(cfg, ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"])

    def build_model(self) -> ImageClassifier:
        return build_model(self.cfg.model, 0, len(self.classes), -1, -1, -1, backbone=self.cfg.backbone)

    # ---- inference: not by search ----------------------------------------------------------------
    def input_length(self, item: Tensor) -> int:
        return 1

    def collate_inputs(self, model: ImageClassifier, items: list[Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
        raise SeqattnError(f"model.arch={self.cfg.model.arch}: a classifier is not decoded by search")

    def text(self, hyp: Hypothesis) -> str:
        return self.classes[hyp.tokens[0]]

    @torch.no_grad()
    def validate(
        self, model: ImageClassifier, search: SearchConfig, device: torch.device, amp_dtype: torch.dtype | None,
    ) -> Validation:
        """Top-1 accuracy on the test split (the fraction of images whose highest logit is their class),
        the predicted class names, and the mean cross-entropy; `search` is unused."""
        model.eval()
        data, loss, predicted, labels = self.valid_data, 0.0, [], []
        for ids in data.batches(0, shuffle=False):
            batch = data.batch(ids).to(device)
            with autocast(device, amp_dtype):
                out = model(batch.src, batch.src_mask, batch.tgt_in)
            loss += model.nll(out.logits, batch.tgt_out).item()
            predicted += out.logits.argmax(-1).tolist()
            labels += batch.tgt_out.tolist()
        correct = sum(p == y for p, y in zip(predicted, labels))
        return Validation([self.classes[p] for p in predicted], correct / len(data), loss / len(data))


def check_config(cfg: Config) -> None:
    """Raise SeqattnError naming the option a classification run cannot start with."""
    c = cfg.classify
    if c.batch_size < 1:
        raise SeqattnError(f"classify.batch_size: {c.batch_size} is not a positive number")
    for name in ("train_images", "test_images"):
        if getattr(c, name) < 0:
            raise SeqattnError(f"classify.{name}: {getattr(c, name)} is negative; 0 takes all images")
    if cfg.backbone.freeze and cfg.backbone.pretrained == "none":
        raise SeqattnError("backbone.freeze=true with backbone.pretrained=none would train the last layer only, "
                           "on random features; set backbone.freeze=false")
