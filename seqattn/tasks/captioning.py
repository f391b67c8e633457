"""Captioning (Xu et al. 2015): images and their captions, a CNN backbone, sacreBLEU against all references.

Every (image, caption) pair is a training example. A frozen backbone's annotation grids are cached
on disk and batches carry them as `src` [B, L, D]; a backbone that is trained gets the images
themselves [B, 3, H, W], randomly cropped and flipped, and the model runs the CNN.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from seqattn.config import Config, SearchConfig
from seqattn.captioner import Captioner
from seqattn.data.batching import Batch, pad, token_batches
from seqattn.data.captions import CaptionSplit, read_captions
from seqattn.data.features import cached_annotations
from seqattn.data.images import image_transform, load_image
from seqattn.data.vocab import build_caption_vocab, words
from seqattn.errors import SeqattnError
from seqattn.evaluation import Score, corpus_bleu
from seqattn.models import Seq2Seq, build_model
from seqattn.modules.backbones import Backbone, build_backbone
from seqattn.tasks.base import Task


class CaptionData:
    """The (image, caption) pairs of a split. Images come as cached grids a [N, L, D] or, without
    them, are loaded and transformed per batch."""

    def __init__(
        self, split: CaptionSplit, caption_ids: list[list[int]], image_of: list[int], L: int,
        grids: Tensor | None, transform: Callable | None,
    ) -> None:
        self.split, self.caption_ids, self.image_of, self.L = split, caption_ids, image_of, L
        self.grids, self.transform = grids, transform

    def __len__(self) -> int:
        return len(self.caption_ids)

    def batches(self, batch_tokens: int, shuffle: bool, seed: int = 0) -> list[list[int]]:
        return token_batches([len(ids) + 1 for ids in self.caption_ids], batch_tokens, shuffle, seed)

    def source(self, images: list[int]) -> Tensor:
        """Annotation grids [B, L, D] as cached (float16: the model casts them on its device) or
        transformed images [B, 3, H, W]."""
        if self.grids is not None:
            return self.grids[images]
        return torch.stack([self.transform(load_image(self.split.images[i])) for i in images])

    def batch(self, indices: list[int], tok) -> Batch:
        tgt = [self.caption_ids[i] for i in indices]
        return Batch(
            src=self.source([self.image_of[i] for i in indices]),
            src_mask=torch.ones(len(indices), self.L, dtype=torch.bool),  # [B, L]: every location
            tgt_in=pad([[tok.bos_id] + t for t in tgt], tok.pad_id),
            tgt_out=pad([t + [tok.eos_id] for t in tgt], tok.pad_id),
            indices=indices, ntokens=sum(len(t) + 1 for t in tgt),
        )


class CaptioningTask(Task):
    src_tok = None  # the source is an image

    def __init__(self, cfg: Config, log=print, device: torch.device | None = None) -> None:
        super().__init__(cfg)
        c, b = cfg.captions, cfg.backbone
        if cfg.search.max_len_a != 0:
            raise SeqattnError("search.max_len_a: a caption's length does not grow with the image's L locations; "
                               "set search.max_len_a=0 and search.max_len_b to the longest caption wanted")
        if not b.freeze and b.grid <= 0:
            raise SeqattnError("backbone.grid: a backbone that is trained needs a fixed grid (e.g. 14), not 0")
        out = Path(cfg.out_dir)
        train, valid = read_captions(c, "train", log), read_captions(c, "valid", log)
        self.tgt_tok = build_caption_vocab(c, out, [s for caps in train.captions for s in caps])
        self.backbone: Backbone = build_backbone(b)
        self.device = device or torch.device("cpu")
        cache_dir = Path(b.cache_dir) if b.cache_dir else out / "features"
        grids = {}
        if b.freeze:
            self.backbone.to(self.device)
            grids = {s.name: cached_annotations(self.backbone, b, s.images, cache_dir, s.name, self.device, log)
                     for s in (train, valid)}
        L = next(iter(grids.values())).size(1) if grids else b.grid * b.grid
        self.train_data = self.pairs(train, grids.get("train"), L, train_mode=True, max_len=c.max_len, log=log)
        self.valid_data = self.pairs(valid, grids.get("valid"), L, train_mode=False)
        # sacreBLEU reference streams of the valid captions, in Karpathy's tokenisation as the hypotheses
        self.valid_refs = reference_streams([[" ".join(words(r)) for r in refs] for refs in valid.captions])
        log(f"captions: {len(train)} training images ({len(self.train_data)} captions), {len(valid)} valid "
            f"images; vocabulary {len(self.tgt_tok)} ({c.vocab}); annotation grid L={L}")

    def pairs(
        self, split: CaptionSplit, grids: Tensor | None, L: int, train_mode: bool, max_len: int = 0, log=print,
    ) -> CaptionData:
        """Every caption of `split` as an example (training captions longer than max_len dropped)."""
        ids = self.tgt_tok.encode([s for caps in split.captions for s in caps])
        image_of = [i for i, caps in enumerate(split.captions) for _ in caps]
        keep = [j for j, t in enumerate(ids) if t and (not max_len or len(t) <= max_len)]
        if len(keep) < len(ids):
            log(f"{split.name}: {len(ids) - len(keep)} of {len(ids)} captions dropped (empty or over "
                f"captions.max_len={max_len})")
        b = self.backbone
        transform = None if grids is not None else image_transform(self.cfg.backbone.image_size, b.mean, b.std,
                                                                   train=train_mode)
        return CaptionData(split, [ids[j] for j in keep], [image_of[j] for j in keep], L, grids, transform)

    def build_model(self) -> Seq2Seq:
        tok = self.tgt_tok
        return build_model(self.cfg.model, 0, len(tok), tok.pad_id, tok.bos_id, tok.eos_id,
                           backbone=self.backbone, grid=self.cfg.backbone.grid)

    def validate(
        self, model: Seq2Seq, search: SearchConfig, device: torch.device, amp_dtype: torch.dtype | None,
    ) -> tuple[list[str], Score]:
        captioner = Captioner(model, self.tgt_tok, search, device, amp_dtype=amp_dtype)
        data = self.valid_data
        if data.grids is not None:
            results = captioner.caption_annotations(data.grids)
        else:
            results = captioner.caption_images(data.split.images, self.cfg.backbone.image_size)
        hyps = [captioner.detokenize(nbest[0]) for nbest in results]
        return hyps, corpus_bleu([" ".join(words(h)) for h in hyps], self.valid_refs)


def reference_streams(captions: list[list[str]]) -> list[list[str]]:
    """Per-image reference lists -> sacreBLEU's reference streams (as many as the fewest references)."""
    n = min(len(refs) for refs in captions)
    return [[refs[k] for refs in captions] for k in range(n)]
