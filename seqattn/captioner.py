"""Images in, captions out: annotation grids (cached, or from the model's CNN), the shared search, words."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seqattn.config import SearchConfig
from seqattn.data.images import image_batches, image_transform
from seqattn.models import Seq2Seq
from seqattn.precision import autocast
from seqattn.search import Hypothesis, search


class Captioner:
    """`model` is a captioning Seq2Seq (its `annotate` turns images into a grid); `vocab` decodes words."""

    def __init__(
        self, model: Seq2Seq, vocab: Any, cfg: SearchConfig, device: torch.device,
        generator: torch.Generator | None = None, amp_dtype: torch.dtype | None = None,
    ) -> None:
        self.model, self.vocab, self.cfg, self.device = model, vocab, cfg, device
        self.generator, self.amp_dtype = generator, amp_dtype

    @torch.no_grad()  # not inference_mode: under it autocast re-casts the weights at every search step
    def caption_annotations(self, grids: Tensor) -> list[list[Hypothesis]]:
        """Annotation grids a [N, L, D] -> n-best captions per image; alpha rows are over the L locations."""
        self.model.eval()
        results: list[list[Hypothesis]] = []
        for start in range(0, grids.size(0), self.cfg.batch_size):
            a = grids[start : start + self.cfg.batch_size].to(self.device)  # [B, L, D], cast by the model
            mask = torch.ones(a.shape[:2], dtype=torch.bool, device=self.device)  # [B, L]
            with autocast(self.device, self.amp_dtype):
                results += search(self.model, a, mask, self.cfg, self.generator)
        return results

    @torch.no_grad()
    def caption_images(self, images: Sequence[Path], image_size: int) -> list[list[Hypothesis]]:
        """Image files -> n-best captions each, the CNN run by the model (evaluation transform)."""
        self.model.eval()
        backbone = self.model.backbone
        transform = image_transform(image_size, backbone.mean, backbone.std, train=False)
        results: list[list[Hypothesis]] = []
        for x in image_batches(images, transform, self.cfg.batch_size):
            with autocast(self.device, self.amp_dtype):
                grids = self.model.annotate(x.to(self.device))  # [B, L, D]
            results += self.caption_annotations(grids)
        return results

    def detokenize(self, hyp: Hypothesis) -> str:
        return self.vocab.decode(hyp.tokens)
