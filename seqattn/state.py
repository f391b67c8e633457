"""Decoder state: what a model's `encode` returns and its `step` advances, and how search reorders it.

A state is a (possibly nested) dict, list or tuple of tensors whose first dimension is the batch.
Search advances it one token at a time with the model's `step` and reorders or expands it with
`select_state`, never asking which model it drives. What stays the same for a sentence while it is
decoded (the encoder's keys, values and mask) goes in a `Memory`, which beam search leaves in place
when it only reorders the hypotheses of each sentence; a `SentenceMemory` is held once per sentence,
not once per hypothesis, and selected only when sentences leave the batch. A cache that grows by one position a step
(the Transformer's self-attention keys and values) is held as `Rows`, which selects lazily: the
reordering is applied when the cache is next extended, in the same copy.

This module sits below modules/, models/ and search/, which all import it.
"""
from __future__ import annotations

from typing import Any, Callable, Union

import torch
from torch import Tensor

State = Union[Tensor, "Rows", dict[str, Any], list[Any], tuple[Any, ...], None]


class Memory(dict):
    """The part of a state that is fixed per sentence during decoding (encoder keys, values, mask):
    the rows of one sentence's hypotheses are equal copies, so reordering them changes nothing."""


class SentenceMemory(Memory):
    """A Memory with one row per sentence, not one per hypothesis: a batch of B rows over n sentences
    reads row i // g of it at row i, g = B / n (beam search: g = K). Expanding and reordering the
    hypotheses leave it as it is; `select_state(..., sentences=...)` selects it when sentences leave."""


class Rows:
    """Rows `index` of a batch-first tensor `data`, selected lazily (index None: all rows)."""

    def __init__(self, data: Tensor, index: Tensor | None = None) -> None:
        self.data, self.index = data, index  # data [B0, ...], index [B] of rows of data

    @property
    def shape(self) -> torch.Size:
        return self.data.shape if self.index is None else torch.Size((len(self.index), *self.data.shape[1:]))

    def select(self, index: Tensor) -> Rows:
        """Rows `index` of these rows, still not copied."""
        return Rows(self.data, index if self.index is None else self.index[index])

    def tensor(self) -> Tensor:
        """The selected rows as a tensor [B, ...]."""
        return self.data if self.index is None else self.data.index_select(0, self.index)

    def extend(self, new: Tensor, dim: int) -> Rows:
        """The selected rows with new [B, ..., T, ...] appended along `dim`, written in one copy
        (search, without autograd) instead of one to select and one to append."""
        if self.data.size(dim) == 0:
            return Rows(new)
        if self.index is None or torch.is_grad_enabled():
            return Rows(torch.cat([self.tensor(), new], dim))
        t = self.data.size(dim)
        out = new.new_empty(*new.shape[:dim], t + new.size(dim), *new.shape[dim + 1 :])
        torch.index_select(self.data, 0, self.index, out=out.narrow(dim, 0, t))
        out.narrow(dim, t, new.size(dim)).copy_(new)
        return Rows(out)


Leaf = Union[Tensor, Rows]


def map_state(fn: Callable[[Leaf], Leaf], state: State, memory: Callable[[Memory], State] | None = None) -> State:
    """Apply `fn` to every tensor and `Rows` of a nested state; a `Memory` goes to `memory` instead when given."""
    if isinstance(state, (Tensor, Rows)):
        return fn(state)
    if isinstance(state, Memory) and memory is not None:
        return memory(state)
    if isinstance(state, dict):
        return type(state)((k, map_state(fn, v, memory)) for k, v in state.items())
    if isinstance(state, (list, tuple)):
        return type(state)(map_state(fn, v, memory) for v in state)
    return state


def select_state(
    state: State, index: Tensor, within_sentences: bool = False, sentences: Tensor | None = None,
) -> State:
    """Rows `index` of every tensor in `state` (batch-first): beam reordering, expansion, pruning.
    `within_sentences`: every row of `index` comes from the same sentence's rows, so `Memory` is kept.
    A `SentenceMemory` keeps its rows `sentences` (None: all, as they are; the sentences still in the
    batch, in order, when some leave it)."""
    def rows(t: Leaf) -> Leaf:
        return t.select(index) if isinstance(t, Rows) else t.index_select(0, index)

    def memory(m: Memory) -> State:
        if isinstance(m, SentenceMemory):
            return m if sentences is None else map_state(lambda t: t.index_select(0, sentences), m)
        return m if within_sentences else map_state(rows, m)

    return map_state(rows, state, memory)
