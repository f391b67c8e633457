"""Question answering on bAbI (Weston et al. 2015) with memory networks: a story and a question in,
the answer's words out; scored by exact match of the whole answer ("apple,football" must be both
words in order).

An example is a `BabiExample` (seqattn.data.babi); batches carry the story and question as `src`
[B, M+1, W] and the memory mask [B, M], so the shared trainer, search and Predictor drive memory
networks like any other model.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from seqattn.config import Config, SearchConfig
from seqattn.data.babi import BabiExample, build_babi_vocab, collate_babi, collate_ids, encode_babi, load_babi
from seqattn.data.batching import Batch, token_batches
from seqattn.data.vocab import WordVocab
from seqattn.evaluation.qa import answer_text, is_right
from seqattn.inference import Predictor
from seqattn.models import Seq2Seq, build_model
from seqattn.search import Hypothesis
from seqattn.tasks.base import Metric, Task, Validation


class BabiData:
    """The questions of a split as the trainer walks them, encoded once."""

    def __init__(self, examples: list[BabiExample], vocab: WordVocab) -> None:
        self.examples, self.vocab = examples, vocab
        self.ids = [encode_babi(ex, vocab) for ex in examples]

    def __len__(self) -> int:
        return len(self.examples)

    def batches(self, batch_tokens: int, shuffle: bool, seed: int = 0) -> list[list[int]]:
        """Batches of at most `batch_tokens` answer tokens (EOS included)."""
        return token_batches([len(ex.answer) + 1 for ex in self.examples], batch_tokens, shuffle, seed)

    def batch(self, indices: list[int], tok: WordVocab) -> Batch:
        return collate_ids([self.ids[i] for i in indices], indices, tok)


class QATask(Task):
    """Stories, questions and answers of cfg.babi; one word vocabulary on both sides (vocab.json)."""

    metric = Metric("accuracy", "accuracy")  # exact match of the whole answer, x100

    def __init__(self, cfg: Config, vocab: WordVocab) -> None:
        super().__init__(cfg, vocab, vocab)

    @classmethod
    def prepare(cls, cfg: Config, log=print, device: torch.device | None = None) -> QATask:
        splits = load_babi(cfg.babi, log)
        path = Path(cfg.out_dir) / "vocab.json"
        if not path.is_file():
            build_babi_vocab(splits["train"]).save(path)
        task = cls(cfg, WordVocab.load(path))
        task.train_data, task.valid_data = BabiData(splits["train"], task.tgt_tok), BabiData(splits["valid"], task.tgt_tok)
        tasks = sorted({ex.task for ex in splits["train"]})
        log(f"bAbI: {len(task.train_data)} training and {len(task.valid_data)} valid questions of tasks "
            f"{', '.join(map(str, tasks))}; vocabulary {len(task.tgt_tok)} words; memory {cfg.babi.memory_size} sentences")
        return task

    @classmethod
    def from_run(cls, cfg: Config, folder: Path) -> QATask:
        return cls(cfg, WordVocab.load(folder / "vocab.json"))

    def build_model(self) -> Seq2Seq:
        v = self.tgt_tok
        return build_model(self.cfg.model, len(v), len(v), v.pad_id, v.bos_id, v.eos_id, words=v.itos)

    # ---- inference: an input is a BabiExample (its answer, if any, is not read) -----------------
    def input_length(self, item: BabiExample) -> int:
        return len(item.memory) + 1

    def collate_inputs(self, model: Seq2Seq, items: list[BabiExample], device: torch.device) -> tuple[Tensor, Tensor]:
        batch = collate_babi(items, list(range(len(items))), self.tgt_tok)
        return batch.src.to(device), batch.src_mask.to(device)

    def text(self, hyp: Hypothesis) -> str:
        return answer_text(self.tgt_tok.decode(hyp.tokens).split())

    @torch.no_grad()
    def hop_attention(self, model: Seq2Seq, examples: list[BabiExample], device: torch.device,
                      batch_size: int) -> list[Tensor]:
        """Every hop's attention [K, M_i] over each example's memories (model.hop_attention)."""
        model.eval()
        out: list[Tensor] = []
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            src, src_mask = self.collate_inputs(model, chunk, device)
            p = model.hop_attention(src, src_mask).float().cpu()  # [B, K, M]
            out += [p[i, :, : len(ex.memory)] for i, ex in enumerate(chunk)]
        return out

    def validate(
        self, model: Seq2Seq, search: SearchConfig, device: torch.device, amp_dtype: torch.dtype | None,
    ) -> Validation:
        """Answers of the valid questions and their exact-match accuracy (x100)."""
        examples = self.valid_data.examples
        answers = [self.text(nbest[0]) for nbest in Predictor(self, model, search, device, amp_dtype=amp_dtype).predict(examples)]
        right = sum(is_right(ex, a) for a, ex in zip(answers, examples))
        return Validation(answers, 100.0 * right / max(1, len(examples)))
