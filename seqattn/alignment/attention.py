"""Word alignments from a translation model's attention: the target sentences are force-decoded
(teacher forcing, no search) and each target word is linked to source words by its attention,
as Bahdanau et al. (2015, sec. 5.2.1) read alignments off RNNsearch and Garg et al. (2019) off
a Transformer's cross-attention.

Words: the source and given target sentences are tokenised text, whitespace-split words; each is
encoded with the model's sentencepiece model word by word, so a piece belongs to exactly one
of these words by construction (sentencepiece splits at whitespace before segmenting, so the pieces
are those of the whole sentence; a word with no pieces gets no link). A translation of the model's
own (`own_translations`) keeps the search's pieces; there '▁' begins a word (data.subwords.words_of_pieces).

Attention: `Seq2Seq.cross_attention`, every layer and head in one forced pass (the Transformer's
cross-attention weights softmax(Q K^T / sqrt(d_k)); other models' `forward` alpha, 1 layer of 1 head).
The EOS rows and the source EOS column are dropped, weights are not renormalised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor

from seqattn.alignment.links import word_links
from seqattn.config import SearchConfig
from seqattn.data.alignments import Link
from seqattn.data.batching import Batch, collate
from seqattn.data.subwords import WORD_START, Tokenizer, words_of_pieces
from seqattn.errors import SeqattnError
from seqattn.evaluation.alignment import Gold, alignment_error_rate
from seqattn.inference import Predictor
from seqattn.models import Seq2Seq
from seqattn.tasks.base import Task


@dataclass
class Pieces:
    """One sentence as the model sees it: piece ids (no EOS) and the word of each piece."""

    ids: list[int]
    words: list[int]


@dataclass
class AlignOptions:
    pieces: str = "any"  # links.PIECES
    extract: str = "argmax"  # links.EXTRACT
    threshold: float = 0.5
    layer: int | None = None  # decoder layer (None: the model's alpha layer)
    head: int | None = None  # head, -1 the average over heads (None: the model's alpha head)


def encode_words(tok: Tokenizer, words: list[str]) -> Pieces:
    """Whitespace-split words -> their pieces, encoded word by word."""
    per_word = tok.encode(words) if words else []
    return Pieces([i for ids in per_word for i in ids], [k for k, ids in enumerate(per_word) for _ in ids])


def hypothesis_pieces(tok: Tokenizer, ids: list[int]) -> tuple[Pieces, list[str]]:
    """A search's output ids -> its Pieces and its words (pieces grouped at '▁'; a word of only a
    space piece is written '▁', so the words stay as many as the alignment counts)."""
    words = words_of_pieces(tok.pieces(ids))
    n = max(words, default=-1) + 1
    text = [tok.decode([i for i, w in zip(ids, words) if w == k]).strip() or WORD_START for k in range(n)]
    return Pieces(ids, words), text


def own_translations(task: Task, model: Seq2Seq, sources: list[Pieces], search: SearchConfig,
                     device: torch.device) -> list[list[int]]:
    """The best hypothesis of the search `search` for each source: its piece ids."""
    return [nbest[0].tokens for nbest in Predictor(task, model, search, device).predict([s.ids for s in sources])]


def forced_batches(model: Seq2Seq, sources: list[Pieces], targets: list[Pieces], batch_size: int,
                   device: torch.device) -> Iterator[tuple[list[int], Batch]]:
    """The sentence pairs in batches of `batch_size` pairs of similar lengths, ready for a forced pass:
    (the pairs' indices, their batch on `device`)."""
    order = sorted(range(len(sources)), key=lambda k: (len(sources[k].ids), len(targets[k].ids)))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        yield chunk, collate([sources[k].ids for k in chunk], [targets[k].ids for k in chunk], chunk,
                             model.pad_id, model.bos_id, model.eos_id).to(device)


@torch.no_grad()
def forced_attention(model: Seq2Seq, sources: list[Pieces], targets: list[Pieces], batch_size: int,
                     device: torch.device) -> list[Tensor]:
    """Per sentence pair its attention [L, H, T, S] over the target and source pieces (EOS dropped),
    force-decoded in batches of `batch_size` pairs of similar lengths."""
    model.eval()
    result: list[Tensor] = [torch.empty(0)] * len(sources)
    for chunk, batch in forced_batches(model, sources, targets, batch_size, device):
        weights = model.cross_attention(batch.src, batch.src_mask, batch.tgt_in)  # [B, L, H, T, S]
        for row, k in enumerate(chunk):
            result[k] = weights[row, :, :, : len(targets[k].ids), : len(sources[k].ids)].float().cpu()
    return result


def check_layer_head(model: Seq2Seq, layer: int, head: int, name: str) -> None:
    """Raise SeqattnError unless `model` (arch `name`) has decoder layer `layer` and head `head` (-1: average)."""
    layers, heads = model.attention_shape()
    if not -layers <= layer < layers:
        raise SeqattnError(f"--layer {layer}: model {name} has {layers} attention layer(s); count from 0 or back from -1")
    if not -1 <= head < heads:
        raise SeqattnError(f"--head {head}: model {name} has {heads} head(s); give one or -1 (their average)")


def pick(weights: Tensor, layer: int, head: int) -> Tensor:
    """weights [L, H, T, S] -> [T, S] of one layer and one head or (head -1) their average."""
    return weights[layer].mean(dim=0) if head < 0 else weights[layer, head]


def links_of(weights: list[Tensor], sources: list[Pieces], targets: list[Pieces], opts: AlignOptions,
             layer: int, head: int) -> list[set[Link]]:
    return [word_links(pick(w, layer, head), s.words, t.words, opts.pieces, opts.extract, opts.threshold)
            for w, s, t in zip(weights, sources, targets)]


def best_layer(weights: list[Tensor], sources: list[Pieces], targets: list[Pieces], opts: AlignOptions, head: int,
               gold: list[Gold], log: Callable[[str], None]) -> int:
    """The decoder layer whose links have the lowest AER against `gold`, one Gold per sentence pair given."""
    scores = []
    for layer in range(weights[0].size(0)):
        score = alignment_error_rate(gold, links_of(weights, sources, targets, opts, layer, head))
        log(f"layer {layer}: {score.text} on the {len(gold)} held-out sentences")
        scores.append(score.aer)
    return min(range(len(scores)), key=scores.__getitem__)


def attention_links(model: Seq2Seq, name: str, sources: list[Pieces], targets: list[Pieces], opts: AlignOptions,
                    batch_size: int, device: torch.device, gold: list[Gold] | None = None, held_out: int = 0,
                    log: Callable[[str], None] = print) -> list[set[Link]]:
    """Word links (source, target) of each sentence pair from the attention of `model` (arch `name`).
    With `gold`, the first `held_out` pairs only choose the layer, the one of lowest AER against gold's
    first `held_out` sentences (opts.layer ignored), and get no links: the list holds those of the others."""
    layer, head = model.alpha_choice()
    layer, head = (layer if opts.layer is None else opts.layer), (head if opts.head is None else opts.head)
    check_layer_head(model, layer, head, name)
    weights = forced_attention(model, sources, targets, batch_size, device)
    if gold is not None:
        layer = best_layer(weights[:held_out], sources[:held_out], targets[:held_out], opts, head, gold[:held_out], log)
        log(f"aligning with layer {layer}")
        weights, sources, targets = weights[held_out:], sources[held_out:], targets[held_out:]
    return links_of(weights, sources, targets, opts, layer, head)
