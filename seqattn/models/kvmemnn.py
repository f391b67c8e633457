"""Key-value memory networks (Miller et al. 2016) for bAbI question answering.

Each memory slot is a (key, value) pair featurised separately by one embedding A over bags of words
(with the position and temporal encoding options of modules.memory). Key addressing
p_h = softmax(A Phi_X(x) . A Phi_K(k_h)) (eq. 1), value reading o = sum_h p_h A Phi_V(v_h) (eq. 2),
hops q_{j+1} = R_j(q_j + o) (eq. 3), and the answer scored against every vocabulary word through an
embedding B (eq. 4, logits = B q_{H+1}), decoded word by word as in MemN2N.

Values (sec. 3.2): "sentence" (key = value = the sentence) or "last-word" (the value is the word a
sentence ends with, the entity it is about). Key hashing (sec. 3.1): only slots sharing a
non-stopword with the question are addressed (all of them when none does). Linear start as MemN2N's
(an option here, `model.linear_start`: the key addressing softmaxes removed at first).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from seqattn.config import ModelConfig
from seqattn.errors import SeqattnError
from seqattn.models.memn2n import MemoryNetwork, check_memory_options
from seqattn.modules.memory import AnswerDecoder, BagOfWords, ages, masked_attention

VALUES = ("sentence", "last-word")
STOPWORDS = frozenset(
    "a an the is are was were be to of in on at by for from with and or did does do what where who whom which "
    "how why when there that this it its he she they them his her their before after than".split()
)


def stopword_mask(words: list[str]) -> Tensor:
    """[V] True at the ids whose word is a stopword or a special (<pad>, <unk>, <s>, </s>)."""
    return torch.tensor([w in STOPWORDS or (w.startswith("<") and w.endswith(">")) for w in words])


def last_words(story: Tensor, pad_id: int) -> Tensor:
    """The last real word of every sentence: story [B, M, W] -> [B, M, 1] (pad for empty slots)."""
    last = story.ne(pad_id).sum(-1, keepdim=True).sub(1).clamp(min=0)  # [B, M, 1]
    return story.gather(-1, last)


class KVMemNN(MemoryNetwork):
    """H hops of key addressing and value reading over (sentence, value) slots (sec. 3)."""

    def __init__(
        self, vocab: int, dim: int, pad_id: int, bos_id: int, eos_id: int, hops: int = 2, values: str = "sentence",
        position: bool = True, temporal_slots: int = 64, stopwords: Tensor | None = None, capacity: int = 0,
        linear_start: bool = False, linear_start_epochs: int = 0,
    ) -> None:
        super().__init__(pad_id, bos_id, eos_id, linear_start, linear_start_epochs)
        self.values, self.capacity = values, capacity
        self.A = BagOfWords(vocab, dim, pad_id, position, temporal_slots)
        self.R = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(hops))
        self.decoder = AnswerDecoder(vocab, dim, pad_id, bos_id, nn.Embedding(vocab, dim))  # output: B
        self.register_buffer("stopwords", stopwords)  # [V] bool; None: no key hashing
        for p in self.parameters():
            nn.init.normal_(p, 0.0, 0.1)
        self.A.embed.weight.data[pad_id].zero_()
        self.decoder.embed.weight.data[pad_id].zero_()

    def hashed(self, story: Tensor, question: Tensor, mask: Tensor) -> Tensor:
        """Key hashing: mask [B, M] narrowed to slots sharing a non-stopword with the question; a
        question sharing none with any slot keeps them all."""
        content = question.masked_fill(self.stopwords[question], self.pad_id)  # [B, Wq]
        shared = (story.unsqueeze(-1) == content[:, None, None, :]) & content.ne(self.pad_id)[:, None, None, :]
        hit = shared.flatten(2).any(-1) & mask  # [B, M]
        return torch.where(hit.any(-1, keepdim=True), hit, mask)

    def read(self, story: Tensor, question: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        age = ages(mask)  # of the story, before hashing
        if self.stopwords is not None:
            mask = self.hashed(story, question, mask)
        keys = self.A(story, age)  # A Phi_K(k_h) [B, M, d]
        values = keys if self.values == "sentence" else self.A(last_words(story, self.pad_id), age)
        q = self.A(question)  # A Phi_X(x) [B, d]
        alphas = []
        for R in self.R:
            p = masked_attention(torch.einsum("bmd,bd->bm", keys, q), mask, not bool(self.linear), self.capacity)
            q = R(q + torch.einsum("bm,bmd->bd", p, values))
            alphas.append(p)
        return q, torch.stack(alphas, 1)


def build_kvmemnn(
    cfg: ModelConfig, src_vocab: int, tgt_vocab: int, pad_id: int, bos_id: int, eos_id: int,
    words: list[str] | None = None,
) -> KVMemNN:
    """As build_memn2n; key hashing also needs the vocabulary's words (`words=vocab.itos`) to know its stopwords."""
    check_memory_options(cfg)
    if cfg.values not in VALUES:
        raise SeqattnError(f"model.values: unknown {cfg.values!r}; choose sentence or last-word")
    if src_vocab != tgt_vocab:
        raise SeqattnError(f"model.arch: kvmemnn reads and answers with one vocabulary, got {src_vocab} and {tgt_vocab}")
    stopwords = None
    if cfg.key_hashing:
        if words is None or len(words) != tgt_vocab:
            raise SeqattnError("model.key_hashing: needs the vocabulary's words; build with build_kvmemnn(..., words=vocab.itos)")
        stopwords = stopword_mask(words)
    return KVMemNN(
        tgt_vocab, cfg.emb_dim, pad_id, bos_id, eos_id, cfg.hops, cfg.values, cfg.position_encoding,
        cfg.memory_slots if cfg.temporal_encoding else 0, stopwords, cfg.memory_capacity, cfg.linear_start,
        cfg.linear_start_epochs,
    )
