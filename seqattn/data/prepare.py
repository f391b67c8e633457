"""From a config to tokenised splits: read text, train or load subwords, encode, filter."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from seqattn.config import Config
from seqattn.data.alignments import Link, guided_links
from seqattn.data.batching import Batch, collate, filter_pairs, token_batches
from seqattn.data.corpus import load_split
from seqattn.data.subwords import Tokenizer, build_tokenizers, subword_paths, words_of_pieces
from seqattn.errors import SeqattnError


@dataclass
class Split:
    """One tokenised split; text is kept for BLEU against the untokenised references."""

    name: str
    src_text: list[str]
    tgt_text: list[str]
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]
    links: list[list[Link]] | None = None  # guided alignment: (source piece, target piece) links of each pair

    def __len__(self) -> int:
        return len(self.src_ids)

    def batches(self, batch_tokens: int, shuffle: bool, seed: int = 0) -> list[list[int]]:
        lengths = [max(len(s), len(t)) + 1 for s, t in zip(self.src_ids, self.tgt_ids)]
        return token_batches(lengths, batch_tokens, shuffle, seed)

    def batch(self, indices: list[int], tok: Tokenizer) -> Batch:
        return collate(
            [self.src_ids[i] for i in indices], [self.tgt_ids[i] for i in indices], indices,
            tok.pad_id, tok.bos_id, tok.eos_id, None if self.links is None else [self.links[i] for i in indices],
        )

    def subset(self, indices: list[int], name: str | None = None) -> Split:
        pick = lambda xs: [xs[i] for i in indices]  # noqa: E731
        return Split(name or self.name, pick(self.src_text), pick(self.tgt_text), pick(self.src_ids), pick(self.tgt_ids),
                     None if self.links is None else pick(self.links))


def load_tokenizers(cfg: Config) -> tuple[Tokenizer, Tokenizer]:
    """The trained subword models of a run (run `prepare` first)."""
    src_path, tgt_path = subword_paths(Path(cfg.out_dir), cfg.subword, cfg.data.src, cfg.data.tgt)
    return Tokenizer(src_path), Tokenizer(tgt_path)


def encode_split(name: str, src_text: list[str], tgt_text: list[str], src_tok: Tokenizer, tgt_tok: Tokenizer) -> Split:
    return Split(name, src_text, tgt_text, src_tok.encode(src_text), tgt_tok.encode(tgt_text))


def piece_words(texts: list[str], ids_of: list[list[int]], tok: Tokenizer, where: str) -> list[list[int]]:
    """The whitespace-split word of each piece of every sentence (its text and piece ids); `where`
    names the file in the error of a sentence whose pieces do not group into its words."""
    result = []
    for n, (text, ids) in enumerate(zip(texts, ids_of), start=1):
        words = words_of_pieces(tok.pieces(ids))
        if max(words, default=-1) + 1 != len(text.split()):
            raise SeqattnError(f"{where} line {n}: its pieces form {max(words, default=-1) + 1} words, not the "
                               f"{len(text.split())} whitespace-split words that train.guided_alignment counts")
        result.append(words)
    return result


def with_guidance(train: Split, cfg: Config, src_tok: Tokenizer, tgt_tok: Tokenizer) -> Split:
    """`train` with the piece links of each pair read from train.guided_alignment (Chen et al. 2016;
    Garg et al. 2019), before any pair is filtered out, so the file's lines stay in step with the pairs."""
    d = cfg.data
    src = piece_words(train.src_text, train.src_ids, src_tok, f"{d.train}.{d.src}")
    tgt = piece_words(train.tgt_text, train.tgt_ids, tgt_tok, f"{d.train}.{d.tgt}")
    return dataclasses.replace(train, links=guided_links(Path(cfg.train.guided_alignment), src, tgt))


def prepare(cfg: Config, log=print) -> tuple[Tokenizer, Tokenizer, Split, Split]:
    """Train (once) the subword models on the training split; return tokenisers, train and valid.

    The training split is filtered by data.max_len and data.max_ratio, and the number of pairs
    dropped is reported through `log`.
    """
    d = cfg.data
    train_src, train_tgt = load_split(d, d.train)
    src_tok, tgt_tok = build_tokenizers(Path(cfg.out_dir), cfg.subword, d.src, d.tgt, train_src, train_tgt)
    train = encode_split("train", train_src, train_tgt, src_tok, tgt_tok)
    if cfg.train.guided_alignment is not None:
        train = with_guidance(train, cfg, src_tok, tgt_tok)
        log(f"guided alignment: {sum(map(len, train.links))} piece links from {cfg.train.guided_alignment}")
    kept = filter_pairs(train.src_ids, train.tgt_ids, d.max_len, d.max_ratio)
    log(
        f"train: {len(kept)} of {len(train)} pairs kept, {len(train) - len(kept)} dropped by "
        f"data.max_len={d.max_len} / data.max_ratio={d.max_ratio} or empty"
    )
    valid = encode_split("valid", *load_split(d, d.valid), src_tok, tgt_tok)
    log(f"valid: {len(valid)} pairs; vocabulary: {len(src_tok)} source / {len(tgt_tok)} target pieces")
    return src_tok, tgt_tok, train.subset(kept), valid
