"""Length filters, token-based batching with length bucketing, and padding into tensors."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqattn.data.alignments import alignment_target


def filter_pairs(src: list[list[int]], tgt: list[list[int]], max_len: int, max_ratio: float) -> list[int]:
    """Indices of pairs that are non-empty, at most `max_len` long on both sides and whose
    length ratio (longer / shorter) is at most `max_ratio`."""
    keep = []
    for i, (s, t) in enumerate(zip(src, tgt)):
        ls, lt = len(s), len(t)
        if 0 < ls <= max_len and 0 < lt <= max_len and max(ls, lt) <= max_ratio * min(ls, lt):
            keep.append(i)
    return keep


@dataclass
class Batch:
    src: Tensor  # [B, S] source ids + EOS, right-padded
    src_mask: Tensor  # [B, S] True at real tokens
    tgt_in: Tensor  # [B, T] BOS + target ids
    tgt_out: Tensor  # [B, T] target ids + EOS
    indices: list[int]  # positions of the sentences in their corpus
    ntokens: int  # target tokens, EOS included
    alignment: Tensor | None = None  # [B, T, S] guided alignment target per tgt_out token over src (data.alignments)

    def to(self, device: torch.device) -> Batch:
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.src), move(self.src_mask), move(self.tgt_in), move(self.tgt_out), self.indices,
                     self.ntokens, None if self.alignment is None else move(self.alignment))


def pad(seqs: list[list[int]], pad_id: int) -> Tensor:
    """Right-pad lists of ids into a [B, max_len] long tensor."""
    width = max(map(len, seqs))
    return torch.tensor([s + [pad_id] * (width - len(s)) for s in seqs], dtype=torch.long)


def collate(src: list[list[int]], tgt: list[list[int]], indices: list[int], pad_id: int, bos_id: int, eos_id: int,
            links: list[list[tuple[int, int]]] | None = None) -> Batch:
    """Pad a batch; with `links`, the (source piece, target piece) links of each pair, the batch
    carries their guided alignment target (EOS row and column and padding all zero)."""
    src_t = pad([s + [eos_id] for s in src], pad_id)
    tgt_out = pad([t + [eos_id] for t in tgt], pad_id)
    alignment = None if links is None else torch.stack(
        [alignment_target(pair, src_t.size(1), tgt_out.size(1)) for pair in links])  # [B, T, S]
    return Batch(
        src=src_t, src_mask=src_t.ne(pad_id),
        tgt_in=pad([[bos_id] + t for t in tgt], pad_id),
        tgt_out=tgt_out,
        indices=indices, ntokens=sum(len(t) + 1 for t in tgt), alignment=alignment,
    )


def token_batches(lengths: list[int], batch_tokens: int, shuffle: bool, seed: int = 0) -> list[list[int]]:
    """Group sentence indices into batches of at most `batch_tokens` padded tokens.

    Sentences are sorted by length so each batch holds similar lengths (bucketing). With
    `shuffle`, ties are broken at random and the batch order is shuffled, both seeded, so an
    epoch's batches are a pure function of `seed` (what makes resumed training exact).
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=generator).tolist() if shuffle else list(range(len(lengths)))
    order.sort(key=lambda i: lengths[i])  # stable: random tie-breaking when shuffled
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        longest_if_added = max(longest, lengths[i])
        if current and longest_if_added * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest_if_added = [], lengths[i]
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    if shuffle:
        batches = [batches[j] for j in torch.randperm(len(batches), generator=generator).tolist()]
    return batches
