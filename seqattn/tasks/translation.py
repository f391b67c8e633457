"""Translation: parallel text, subword vocabularies, sacreBLEU against the valid references."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from seqattn.config import Config, SearchConfig
from seqattn.data import Tokenizer, prepare
from seqattn.data.batching import pad
from seqattn.data.subwords import subword_paths
from seqattn.evaluation import corpus_bleu
from seqattn.inference import Predictor
from seqattn.models import Seq2Seq, build_model
from seqattn.search import Hypothesis
from seqattn.tasks.base import Task, Validation


class TranslationTask(Task):
    @classmethod
    def prepare(cls, cfg: Config, log=print, device: torch.device | None = None) -> TranslationTask:
        src_tok, tgt_tok, train, valid = prepare(cfg, log=log)
        task = cls(cfg, src_tok, tgt_tok)
        n = cfg.train.valid_max_sentences
        task.train_data, task.valid_data = train, valid.subset(list(range(min(n, len(valid))))) if n else valid
        return task

    @classmethod
    def from_run(cls, cfg: Config, folder: Path) -> TranslationTask:
        src_path, tgt_path = subword_paths(folder, cfg.subword, cfg.data.src, cfg.data.tgt)
        return cls(cfg, Tokenizer(src_path), Tokenizer(tgt_path))

    def build_model(self) -> Seq2Seq:
        src, tgt = self.src_tok, self.tgt_tok
        return build_model(self.cfg.model, len(src), len(tgt), tgt.pad_id, tgt.bos_id, tgt.eos_id)

    def inputs(self, lines: list[str]) -> list[list[int]]:
        """Source sentences -> subword ids (without EOS), the items `Predictor.predict` takes."""
        return self.src_tok.encode(lines)

    def input_length(self, item: list[int]) -> int:
        return len(item)

    def collate_inputs(self, model: Seq2Seq, items: list[list[int]], device: torch.device) -> tuple[Tensor, Tensor]:
        src = pad([ids + [self.src_tok.eos_id] for ids in items], self.src_tok.pad_id).to(device)  # [B, S]
        return src, src.ne(self.src_tok.pad_id)

    def text(self, hyp: Hypothesis) -> str:
        return self.tgt_tok.decode(hyp.tokens)

    def validate(
        self, model: Seq2Seq, search: SearchConfig, device: torch.device, amp_dtype: torch.dtype | None,
    ) -> Validation:
        predictor = Predictor(self, model, search, device, amp_dtype=amp_dtype)
        hyps = [self.text(nbest[0]) for nbest in predictor.predict(self.valid_data.src_ids)]
        return Validation(hyps, corpus_bleu(hyps, [self.valid_data.tgt_text]).score)
