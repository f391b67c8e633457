"""End-to-end memory networks (Sukhbaatar et al. 2015) for bAbI question answering, and the
Seq2Seq plumbing every memory network here shares (`MemoryNetwork`).

`src` is [B, M+1, W] word ids: rows 0..M-1 the story's memories (oldest first), row M the question;
`src_mask` [B, M] is True at real memories (seqattn.data.babi.collate_babi). `encode` runs the hops
once into an answer vector h_0; the answer is read out word by word by modules.memory.AnswerDecoder,
so greedy, beam and sampling search drive these models like any other.
"""
from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor, nn

from seqattn.config import ModelConfig
from seqattn.errors import SeqattnError
from seqattn.models.base import Output, Seq2Seq
from seqattn.modules.memory import AnswerDecoder, BagOfWords, ages, masked_attention, noisy_ages
from seqattn.state import Memory, State

TYING = ("adjacent", "layerwise")


class MemoryNetwork(Seq2Seq):
    """A model that reads a story and a question into an answer vector h_0 [B, d] and attention
    [B, K, M] of each hop, then decodes the answer with an AnswerDecoder."""

    decoder: AnswerDecoder

    def __init__(self, pad_id: int, bos_id: int, eos_id: int, linear_start: bool = False,
                 linear_start_epochs: int = 0) -> None:
        super().__init__(pad_id, bos_id, eos_id)
        self.linear_start_epochs = linear_start_epochs
        self.register_buffer("linear", torch.tensor(linear_start))  # softmax removed from the memory layers
        self.register_buffer("best_valid_loss", torch.tensor(float("inf")))  # best while linear

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # a KV-MemNN checkpoint from before its linear start option was trained without one
        state_dict.setdefault(prefix + "linear", torch.tensor(False))
        state_dict.setdefault(prefix + "best_valid_loss", torch.tensor(float("inf")))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def after_validation(self, metrics: dict[str, float], epochs: float) -> bool:
        """Linear start (Sukhbaatar et al. 2015, sec. 4.2): put the softmax back once
        `metrics["valid_loss"]` stops decreasing (or once `epochs` reaches linear_start_epochs, when
        set); training then recommences (True)."""
        if not bool(self.linear):
            return False
        if self.linear_start_epochs:
            if epochs < self.linear_start_epochs:
                return False
        elif (loss := metrics["valid_loss"]) < self.best_valid_loss.item():
            self.best_valid_loss.fill_(loss)
            return False
        self.linear.fill_(False)
        return True

    @abstractmethod
    def read(self, story: Tensor, question: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """story [B, M, W], question [B, W], mask [B, M] -> h_0 [B, d], every hop's attention [B, K, M]."""

    def hops(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        return self.read(src[:, :-1], src[:, -1], src_mask)

    @torch.no_grad()
    def hop_attention(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """Every hop's weights over the memories [B, K, M] (for pictures): 0 at padding; during a
        MemN2N linear start the raw scores u^T m_i, which need not sum to 1; with a memory capacity,
        what the empty slots take is missing from the sum."""
        return self.hops(src, src_mask)[1]

    def encode(self, src: Tensor, src_mask: Tensor) -> State:
        """State: the answer vector h [B, d], and the last hop's attention [B, M] (fixed per question)."""
        h, alpha = self.hops(src, src_mask)
        return {"h": h, "memory": Memory(alpha=alpha[:, -1])}

    def step(self, y_prev: Tensor, state: State) -> tuple[Tensor, Tensor, State]:
        h = self.decoder.advance(y_prev, state["h"])
        alpha = state["memory"]["alpha"]
        return self.decoder.logits(h).log_softmax(-1), alpha, {"h": h, "memory": state["memory"]}

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, need_alpha: bool = True) -> Output:
        """Teacher forcing: logits [B, T, V]; alpha [B, T, M] is the last hop's attention at every step."""
        h, alpha = self.hops(src, src_mask)
        logits = self.decoder(tgt_in, h)
        return Output(logits, alpha[:, -1:].expand(-1, tgt_in.size(1), -1) if need_alpha else None)


class MemN2N(MemoryNetwork):
    """K hops of p = softmax(u^T m_i) (eq. 1), o = sum_i p_i c_i (eq. 2) and u^{k+1} = u^k + o^k
    (adjacent tying) or H u^k + o^k (layer-wise); the answer vector is o^K + u^K (eq. 3).

    Adjacent tying (sec. 2.2): one embedding per level, A^{k+1} = C^k, B = A^1, W^T = C^K: `levels`
    holds K + 1 of them, A^k = levels[k-1], C^k = levels[k]. Layer-wise: levels = [B, A, C] and W
    has its own matrix.

    Training tricks (sec. 4.2, 4.1): linear start (the memory softmaxes removed until the validation
    loss stops decreasing, or for `linear_start_epochs` epochs as the authors' code does; the trainer
    calls `after_validation`) and random noise (empty memories shifting the temporal indices of
    training stories).
    """

    def __init__(
        self, vocab: int, dim: int, pad_id: int, bos_id: int, eos_id: int, hops: int = 3, tying: str = "adjacent",
        position: bool = True, temporal_slots: int = 64, linear_start: bool = False, random_noise: float = 0.0,
        linear_start_epochs: int = 0, capacity: int = 0,
    ) -> None:
        super().__init__(pad_id, bos_id, eos_id, linear_start, linear_start_epochs)
        self.n_hops, self.tying, self.random_noise, self.capacity = hops, tying, random_noise, capacity
        n_levels = hops + 1 if tying == "adjacent" else 3
        self.levels = nn.ModuleList(BagOfWords(vocab, dim, pad_id, position, temporal_slots) for _ in range(n_levels))
        self.H = nn.Linear(dim, dim, bias=False) if tying == "layerwise" else None
        output = self.levels[-1].embed if tying == "adjacent" else nn.Embedding(vocab, dim)
        self.decoder = AnswerDecoder(vocab, dim, pad_id, bos_id, output)
        for p in self.parameters():
            nn.init.normal_(p, 0.0, 0.1)
        for level in self.levels:
            level.embed.weight.data[pad_id].zero_()
        self.decoder.embed.weight.data[pad_id].zero_()

    def embeddings(self, k: int) -> tuple[int, int]:
        """Which of `levels` are A^k and C^k for hop k = 1..K."""
        return (k - 1, k) if self.tying == "adjacent" else (1, 2)

    def read(self, story: Tensor, question: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        age = noisy_ages(mask, self.random_noise) if self.training and self.random_noise > 0 else ages(mask)
        u = self.levels[0](question)  # u = sum_j l_j B q_j [B, d]
        l = self.levels[0].weights(story)  # l_kj [B, M, W, d] (or None), the same for every embedding
        used = {i for k in range(1, self.n_hops + 1) for i in self.embeddings(k)}
        memories = {i: self.levels[i](story, age, l) for i in sorted(used)}  # m_i or c_i of each level [B, M, d]
        alphas = []
        for k in range(1, self.n_hops + 1):
            a, c = self.embeddings(k)
            scores = torch.einsum("bmd,bd->bm", memories[a], u)  # u^T m_i [B, M]
            p = masked_attention(scores, mask, softmax=not bool(self.linear), capacity=self.capacity)
            o = torch.einsum("bm,bmd->bd", p, memories[c])
            alphas.append(p)
            if k < self.n_hops:
                u = (self.H(u) if self.H is not None else u) + o
        return u + o, torch.stack(alphas, 1)


def check_memory_options(cfg: ModelConfig) -> None:
    """What MemN2N and KV-MemNN both need of the config."""
    if cfg.linear_start_epochs < 0:
        raise SeqattnError(f"model.linear_start_epochs: 0 (end on the valid loss) or a number of epochs, got {cfg.linear_start_epochs}")
    if cfg.hops < 1:
        raise SeqattnError(f"model.hops: at least 1, got {cfg.hops}")
    if cfg.temporal_encoding and cfg.memory_slots < 1:
        raise SeqattnError(f"model.memory_slots: at least 1 with temporal encoding, got {cfg.memory_slots}")
    if cfg.memory_capacity < 0:
        raise SeqattnError(f"model.memory_capacity: 0 (no empty slots) or the memory's size, got {cfg.memory_capacity}")


def build_memn2n(
    cfg: ModelConfig, src_vocab: int, tgt_vocab: int, pad_id: int, bos_id: int, eos_id: int,
    words: list[str] | None = None,
) -> MemN2N:
    """src and tgt vocabularies are one word vocabulary (stories, questions and answers); d = emb_dim.
    `words` (the vocabulary, which the QA task gives every memory network) is for KV-MemNN's key
    hashing; MemN2N reads no word lists."""
    check_memory_options(cfg)
    if cfg.tying not in TYING:
        raise SeqattnError(f"model.tying: unknown {cfg.tying!r}; choose adjacent or layerwise")
    if not 0.0 <= cfg.random_noise < 1.0:
        raise SeqattnError(f"model.random_noise: a fraction in [0, 1), got {cfg.random_noise}")
    if src_vocab != tgt_vocab:
        raise SeqattnError(f"model.arch: memn2n reads and answers with one vocabulary, got {src_vocab} and {tgt_vocab}")
    return MemN2N(
        tgt_vocab, cfg.emb_dim, pad_id, bos_id, eos_id, cfg.hops, cfg.tying, cfg.position_encoding,
        cfg.memory_slots if cfg.temporal_encoding else 0, cfg.linear_start, cfg.random_noise,
        cfg.linear_start_epochs, cfg.memory_capacity,
    )
