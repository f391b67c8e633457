"""Pieces the memory networks share: sentences as weighted bags of words with position and temporal
encoding (Sukhbaatar et al. 2015, sec. 4.1), attention over real memory slots, the training noise on
temporal indices, and the decoder that reads an answer vector out as a word sequence.

A batch of stories is `story` [B, M, W] word ids (M memory slots, oldest first, W words) with
`mask` [B, M] True at real slots; a question is [B, W].
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def position_encoding(ids: Tensor, pad_id: int, dim: int) -> Tensor:
    """l_kj = (1 - j/J) - (k/d)(1 - 2j/J), j = 1..J over a sentence's real words, J its real length,
    k = 1..d (sec. 4.1). ids [..., W] -> weights [..., W, d], zero at padding."""
    real = ids.ne(pad_id)  # [..., W]
    J = real.sum(-1, keepdim=True).clamp(min=1).unsqueeze(-1).float()  # [..., 1, 1]
    j = real.cumsum(-1).unsqueeze(-1).float()  # [..., W, 1]: 1..J at real words
    k = torch.arange(1, dim + 1, device=ids.device, dtype=torch.float) / dim  # [d]: k/d
    weights = (1 - j / J) - k * (1 - 2 * j / J)  # [..., W, d]
    return weights * real.unsqueeze(-1)


def ages(mask: Tensor) -> Tensor:
    """The age of every real slot, 0 for the most recent: mask [B, M] -> [B, M] (0 at padding)."""
    count = mask.sum(-1, keepdim=True)  # [B, 1]
    slot = torch.arange(mask.size(1), device=mask.device)  # [M]
    return (count - 1 - slot).clamp(min=0) * mask


def noisy_ages(mask: Tensor, noise: float) -> Tensor:
    """Ages after adding ceil(noise * n) empty memories at random places of each n-memory story
    (sec. 4.1, "random noise"). An empty memory holds no words, so what it changes on the real ones
    is their temporal index: as in the authors' code (randomtime), the real memories keep their order
    and take random distinct ages among n + ceil(noise * n). Draws from the global torch RNG.
    mask [B, M] (real slots first) -> [B, M] (0 at padding)."""
    n = mask.sum(-1, keepdim=True)  # [B, 1]
    total = n + torch.ceil(n.double() * noise).long()  # [B, 1] real and empty memories
    places = torch.arange(max(int(total.max()), mask.size(1)), device=mask.device)  # [T]
    keys = torch.rand(mask.size(0), places.numel(), device=mask.device).masked_fill(places >= total, 2.0)
    picked = keys.argsort(-1)[:, : mask.size(1)]  # [B, M] a random order of each story's places
    slot = torch.arange(mask.size(1), device=mask.device)  # [M]
    kept = picked.masked_fill(slot >= n, places.numel()).sort(-1).values  # [B, M] the first n places, ascending
    return (total - 1 - kept).clamp(min=0) * mask


def masked_attention(scores: Tensor, mask: Tensor, softmax: bool = True, capacity: int = 0) -> Tensor:
    """p_i = softmax(scores)_i over real slots, exactly 0 at padding; without `softmax` (linear start)
    the raw scores, 0 at padding. scores, mask [B, M] -> [B, M].

    With a memory `capacity` S, a story of n < S memories leaves S - n slots empty, as in the authors'
    code, whose memory is S slots padded with empty sentences: an empty slot has no words and no
    temporal row, so its score is 0 and it takes its share of the softmax,
    p_i = exp(s_i) / (sum_j exp(s_j) + S - n). The real slots then sum to less than 1 when no memory
    matches well, which lets a hop say how well the best one matches (yes/no questions need it)."""
    if not softmax:
        return scores.masked_fill(~mask, 0.0)
    real = scores.masked_fill(~mask, float("-inf"))
    if capacity <= 0:
        return real.softmax(-1).masked_fill(~mask, 0.0)
    empty = (capacity - mask.sum(-1, keepdim=True)).clamp(min=0).to(scores.dtype)  # [B, 1]: S - n
    norm = torch.logaddexp(real.logsumexp(-1, keepdim=True), empty.log())  # log(sum_j exp(s_j) + S - n)
    return (real - norm).exp().masked_fill(~mask, 0.0)


class BagOfWords(nn.Module):
    """m_i = sum_j l_j * A x_ij + T_A(i) (sec. 4.1): an embedding A, optional position weights l_j and
    an optional temporal table T_A indexed by the memory's age."""

    def __init__(self, vocab: int, dim: int, pad_id: int, position: bool = True, temporal_slots: int = 0) -> None:
        super().__init__()
        self.pad_id, self.position = pad_id, position
        self.embed = nn.Embedding(vocab, dim, padding_idx=pad_id)
        self.temporal = nn.Embedding(temporal_slots, dim) if temporal_slots > 0 else None

    def weights(self, ids: Tensor) -> Tensor | None:
        """The position weights l [..., W, d] of `ids` [..., W] (None without position encoding)."""
        return position_encoding(ids, self.pad_id, self.embed.embedding_dim) if self.position else None

    def forward(self, ids: Tensor, age: Tensor | None = None, l: Tensor | None = None) -> Tensor:
        """ids [..., W] -> [..., d]; `age` [...] adds T(age) (clamped to the table's last row); `l`:
        the position weights when the caller has them already (self.weights(ids))."""
        emb = self.embed(ids)  # [..., W, d]
        if self.position:
            emb = emb * (self.weights(ids) if l is None else l)
        out = emb.sum(-2)
        if age is not None and self.temporal is not None:
            out = out + self.temporal(age.clamp(max=self.temporal.num_embeddings - 1))
        return out


class AnswerDecoder(nn.Module):
    """Reads an answer vector h_0 out as words: log p(y_t) = log_softmax(W h_t), h_t = GRUCell(E y_{t-1}, h_{t-1})
    after the first word. The first step is the paper's a = softmax(W h_0) exactly, so single-word
    answers are scored as in the papers; longer ones ("apple,football") continue until EOS.

    `output` is W's [V, d] weight (an embedding, so a model can tie it: C^K in MemN2N, B in KV-MemNN)."""

    def __init__(self, vocab: int, dim: int, pad_id: int, bos_id: int, output: nn.Embedding) -> None:
        super().__init__()
        self.bos_id = bos_id
        self.embed = nn.Embedding(vocab, dim, padding_idx=pad_id)
        self.cell = nn.GRUCell(dim, dim)
        self.output = output

    def advance(self, y_prev: Tensor, h: Tensor) -> Tensor:
        """y_prev [B], h [B, d] -> the next h: kept where y_prev is BOS, else GRUCell(E y_prev, h)."""
        moved = self.cell(self.embed(y_prev), h)
        return torch.where(y_prev.eq(self.bos_id).unsqueeze(-1), h, moved)

    def logits(self, h: Tensor) -> Tensor:
        """W h: [..., d] -> [..., V]."""
        return h @ self.output.weight.t()

    def forward(self, tgt_in: Tensor, h: Tensor) -> Tensor:
        """Teacher forcing: tgt_in [B, T] (BOS + answer), h_0 [B, d] -> logits [B, T, V]."""
        states = []
        for t in range(tgt_in.size(1)):
            h = self.advance(tgt_in[:, t], h)
            states.append(h)
        return self.logits(torch.stack(states, 1))
