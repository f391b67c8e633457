"""From a config to tokenised splits: read text, train or load subwords, encode, filter."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seqattn.config import Config
from seqattn.data.batching import Batch, collate, filter_pairs, token_batches
from seqattn.data.corpus import load_split
from seqattn.data.subwords import Tokenizer, build_tokenizers, subword_paths


@dataclass
class Split:
    """One tokenised split; text is kept for BLEU against the untokenised references."""

    name: str
    src_text: list[str]
    tgt_text: list[str]
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]

    def __len__(self) -> int:
        return len(self.src_ids)

    def batches(self, batch_tokens: int, shuffle: bool, seed: int = 0) -> list[list[int]]:
        lengths = [max(len(s), len(t)) + 1 for s, t in zip(self.src_ids, self.tgt_ids)]
        return token_batches(lengths, batch_tokens, shuffle, seed)

    def batch(self, indices: list[int], tok: Tokenizer) -> Batch:
        return collate(
            [self.src_ids[i] for i in indices], [self.tgt_ids[i] for i in indices], indices,
            tok.pad_id, tok.bos_id, tok.eos_id,
        )

    def subset(self, indices: list[int], name: str | None = None) -> Split:
        pick = lambda xs: [xs[i] for i in indices]  # noqa: E731
        return Split(name or self.name, pick(self.src_text), pick(self.tgt_text), pick(self.src_ids), pick(self.tgt_ids))


def load_tokenizers(cfg: Config) -> tuple[Tokenizer, Tokenizer]:
    """The trained subword models of a run (run `prepare` first)."""
    src_path, tgt_path = subword_paths(Path(cfg.out_dir), cfg.subword, cfg.data.src, cfg.data.tgt)
    return Tokenizer(src_path), Tokenizer(tgt_path)


def encode_split(name: str, src_text: list[str], tgt_text: list[str], src_tok: Tokenizer, tgt_tok: Tokenizer) -> Split:
    return Split(name, src_text, tgt_text, src_tok.encode(src_text), tgt_tok.encode(tgt_text))


def prepare(cfg: Config, log=print) -> tuple[Tokenizer, Tokenizer, Split, Split]:
    """Train (once) the subword models on the training split; return tokenisers, train and valid.

    The training split is filtered by data.max_len and data.max_ratio, and the number of pairs
    dropped is reported through `log`.
    """
    d = cfg.data
    train_src, train_tgt = load_split(d, d.train)
    src_tok, tgt_tok = build_tokenizers(Path(cfg.out_dir), cfg.subword, d.src, d.tgt, train_src, train_tgt)
    train = encode_split("train", train_src, train_tgt, src_tok, tgt_tok)
    kept = filter_pairs(train.src_ids, train.tgt_ids, d.max_len, d.max_ratio)
    log(
        f"train: {len(kept)} of {len(train)} pairs kept, {len(train) - len(kept)} dropped by "
        f"data.max_len={d.max_len} / data.max_ratio={d.max_ratio} or empty"
    )
    valid = encode_split("valid", *load_split(d, d.valid), src_tok, tgt_tok)
    log(f"valid: {len(valid)} pairs; vocabulary: {len(src_tok)} source / {len(tgt_tok)} target pieces")
    return src_tok, tgt_tok, train.subset(kept), valid
