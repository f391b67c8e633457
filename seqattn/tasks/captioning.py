"""Captioning (Xu et al. 2015): images and their captions, a CNN backbone, validation by sacreBLEU against
all references or by CIDEr (captions.valid_metric).

Every (image, caption) pair is a training example. A frozen backbone's annotation grids are cached
on disk and batches carry them as `src` [B, L, D]; a backbone that is trained gets the images
themselves [B, 3, H, W], randomly cropped and flipped, and the model runs the CNN.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from seqattn.config import Config, SearchConfig
from seqattn.data.batching import Batch, pad, token_batches
from seqattn.data.captions import CaptionSplit, read_captions
from seqattn.data.features import cached_annotations
from seqattn.data.images import image_transform, load_image
from seqattn.data.subwords import Tokenizer
from seqattn.data.vocab import WordVocab, build_caption_vocab, words
from seqattn.errors import SeqattnError
from seqattn.evaluation import corpus_bleu
from seqattn.inference import Predictor
from seqattn.models import Seq2Seq, build_model
from seqattn.modules.backbones import Backbone, build_backbone
from seqattn.search import Hypothesis
from seqattn.tasks.base import CAPTION_METRICS, Task, Validation


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
    """The source is an image (no source vocabulary); `backbone` is the CNN the model is built with;
    the metric is captions.valid_metric's."""

    def __init__(self, cfg: Config, tgt_tok, backbone: Backbone) -> None:
        super().__init__(cfg, None, tgt_tok)
        self.backbone = backbone
        self.metric = CAPTION_METRICS[cfg.captions.valid_metric]

    @classmethod
    def prepare(cls, cfg: Config, log=print, device: torch.device | None = None) -> CaptioningTask:
        c, b = cfg.captions, cfg.backbone
        if cfg.search.max_len_a != 0:
            raise SeqattnError("search.max_len_a: a caption's length does not grow with the image's L locations; "
                               "set search.max_len_a=0 and search.max_len_b to the longest caption wanted")
        if not b.freeze and b.grid <= 0:
            raise SeqattnError("backbone.grid: a backbone that is trained needs a fixed grid (e.g. 14), not 0")
        out = Path(cfg.out_dir)
        train, valid = read_captions(c, "train", log), read_captions(c, "valid", log)
        task = cls(cfg, build_caption_vocab(c, out, [s for caps in train.captions for s in caps]), build_backbone(b))
        device = device or torch.device("cpu")
        cache_dir = Path(b.cache_dir) if b.cache_dir else out / "features"
        grids = {}
        if b.freeze:
            task.backbone.to(device)
            grids = {s.name: cached_annotations(task.backbone, b, s.images, cache_dir, s.name, device, log)
                     for s in (train, valid)}
        L = next(iter(grids.values())).size(1) if grids else b.grid * b.grid
        task.train_data = task.pairs(train, grids.get("train"), L, train_mode=True, max_len=c.max_len, log=log)
        task.valid_data = task.pairs(valid, grids.get("valid"), L, train_mode=False)
        # sacreBLEU reference streams of the valid captions, in Karpathy's tokenisation as the hypotheses
        task.valid_refs = reference_streams([[" ".join(words(r)) for r in refs] for refs in valid.captions])
        log(f"captions: {len(train)} training images ({len(task.train_data)} captions), {len(valid)} valid "
            f"images; vocabulary {len(task.tgt_tok)} ({c.vocab}); annotation grid L={L}; validation by {task.metric.label}")
        return task

    @classmethod
    def from_run(cls, cfg: Config, folder: Path) -> CaptioningTask:
        """The vocabulary saved in `folder`; the CNN's weights are in the checkpoint, so none are loaded here."""
        vocab = WordVocab.load(folder / "vocab.json") if cfg.captions.vocab == "word" else Tokenizer(folder / "spm.model")
        return cls(cfg, vocab, build_backbone(dataclasses.replace(cfg.backbone, pretrained="none")))

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

    # ---- inference: an input is an image file or a cached annotation grid a [L, D] ----------------
    def input_length(self, item: Path | Tensor) -> int:
        return 1  # images are not batched by size

    def collate_inputs(self, model: Seq2Seq, items: list[Path | Tensor], device: torch.device) -> tuple[Tensor, Tensor]:
        """Grids a [B, L, D] as cached (cast by the model) or the images' through the model's CNN
        (evaluation transform), and the all-True mask [B, L]."""
        if isinstance(items[0], Tensor):
            a = torch.stack(items).to(device)
        else:
            b = self.backbone
            transform = image_transform(self.cfg.backbone.image_size, b.mean, b.std, train=False)
            a = model.annotate(torch.stack([transform(load_image(path)) for path in items]).to(device))
        return a, torch.ones(a.shape[:2], dtype=torch.bool, device=device)

    def text(self, hyp: Hypothesis) -> str:
        return self.tgt_tok.decode(hyp.tokens)

    def validate(
        self, model: Seq2Seq, search: SearchConfig, device: torch.device, amp_dtype: torch.dtype | None,
    ) -> Validation:
        data = self.valid_data
        items = list(data.grids) if data.grids is not None else data.split.images
        results = Predictor(self, model, search, device, amp_dtype=amp_dtype).predict(items)
        hyps = [self.text(nbest[0]) for nbest in results]
        return Validation(hyps, self.score(hyps))

    def score(self, hyps: list[str]) -> float:
        """The valid images' captions by the task's metric: sacreBLEU of Karpathy's words against every
        reference stream, or CIDEr (x100, seqattn.evaluation.captions.cider) against each image's references."""
        if self.metric.name == "cider":
            from seqattn.evaluation.captions import cider  # pycocoevalcap, loaded on first use

            return cider(hyps, self.valid_data.split.captions)
        return corpus_bleu([" ".join(words(h)) for h in hyps], self.valid_refs).score


def reference_streams(captions: list[list[str]]) -> list[list[str]]:
    """Per-image reference lists -> sacreBLEU's reference streams (as many as the fewest references)."""
    n = min(len(refs) for refs in captions)
    return [[refs[k] for refs in captions] for k in range(n)]
