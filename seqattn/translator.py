"""Text in, translations out: tokenise, batch by length, run the shared search, detokenise."""
from __future__ import annotations

import torch

from seqattn.config import SearchConfig
from seqattn.data.batching import pad
from seqattn.data.subwords import Tokenizer
from seqattn.models import Seq2Seq
from seqattn.precision import autocast
from seqattn.search import Hypothesis, search


class Translator:
    """`model` may be one model or an Ensemble; `generator` draws the samples when cfg.sampling;
    with `amp_dtype` (torch.bfloat16 or torch.float16) the model runs under autocast."""

    def __init__(
        self, model: Seq2Seq, src_tok: Tokenizer, tgt_tok: Tokenizer, cfg: SearchConfig, device: torch.device,
        generator: torch.Generator | None = None, amp_dtype: torch.dtype | None = None,
    ) -> None:
        self.model, self.src_tok, self.tgt_tok, self.cfg, self.device = model, src_tok, tgt_tok, cfg, device
        self.generator, self.amp_dtype = generator, amp_dtype

    @torch.no_grad()  # not inference_mode: under it autocast re-casts the weights at every search step
    def translate_ids(self, src_ids: list[list[int]]) -> list[list[Hypothesis]]:
        """Subword ids (without EOS) -> n-best hypotheses per sentence, in input order."""
        self.model.eval()
        order = sorted(range(len(src_ids)), key=lambda i: len(src_ids[i]))
        results: list[list[Hypothesis]] = [[] for _ in src_ids]
        for start in range(0, len(order), self.cfg.batch_size):
            chunk = order[start : start + self.cfg.batch_size]
            src = pad([src_ids[i] + [self.src_tok.eos_id] for i in chunk], self.src_tok.pad_id).to(self.device)
            with autocast(self.device, self.amp_dtype):
                hyps = search(self.model, src, src.ne(self.src_tok.pad_id), self.cfg, self.generator)
            for i, nbest in zip(chunk, hyps):
                results[i] = nbest
        return results

    def translate(self, lines: list[str]) -> list[list[Hypothesis]]:
        return self.translate_ids(self.src_tok.encode(lines))

    def detokenize(self, hyp: Hypothesis) -> str:
        return self.tgt_tok.decode(hyp.tokens)
