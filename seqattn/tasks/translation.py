"""Translation: parallel text, subword vocabularies, sacreBLEU against the valid references."""
from __future__ import annotations

import torch

from seqattn.config import Config, SearchConfig
from seqattn.data import prepare
from seqattn.evaluation import Score, corpus_bleu
from seqattn.models import Seq2Seq, build_model
from seqattn.tasks.base import Task
from seqattn.translator import Translator


class TranslationTask(Task):
    def __init__(self, cfg: Config, log=print) -> None:
        super().__init__(cfg)
        self.src_tok, self.tgt_tok, self.train_data, self.valid_data = prepare(cfg, log=log)
        n = cfg.train.valid_max_sentences
        if n:
            self.valid_data = self.valid_data.subset(list(range(min(n, len(self.valid_data)))))

    def build_model(self) -> Seq2Seq:
        src, tgt = self.src_tok, self.tgt_tok
        return build_model(self.cfg.model, len(src), len(tgt), tgt.pad_id, tgt.bos_id, tgt.eos_id)

    def validate(
        self, model: Seq2Seq, search: SearchConfig, device: torch.device, amp_dtype: torch.dtype | None,
    ) -> tuple[list[str], Score]:
        translator = Translator(model, self.src_tok, self.tgt_tok, search, device, amp_dtype=amp_dtype)
        hyps = [translator.detokenize(nbest[0]) for nbest in translator.translate_ids(self.valid_data.src_ids)]
        return hyps, corpus_bleu(hyps, [self.valid_data.tgt_text])
