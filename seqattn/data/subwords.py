"""Subword vocabularies with sentencepiece (unigram or BPE; joint or one per language)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import sentencepiece as spm

from seqattn.config import SubwordConfig
from seqattn.errors import SeqattnError

MODEL_TYPES = ("unigram", "bpe")  # subword.model_type

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
WORD_START = "\u2581"  # sentencepiece's meta symbol for the space before a word


class Tokenizer:
    """A trained sentencepiece model: text <-> ids, with pad/unk/bos/eos fixed to 0/1/2/3."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SeqattnError(f"{self.path}: sentencepiece model not found; run `seqattn preprocess` first")
        self.sp = spm.SentencePieceProcessor(model_file=str(self.path))
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, lines: list[str]) -> list[list[int]]:
        """Sentences -> subword ids (no BOS/EOS)."""
        return self.sp.encode(lines)

    def decode(self, ids: list[int]) -> str:
        """Subword ids -> detokenised text."""
        return self.sp.decode(ids)

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.sp.id_to_piece(i) for i in ids]


def words_of_pieces(pieces: list[str]) -> list[int]:
    """The word of each piece: a piece starting with '▁' begins a word; the pieces before the first
    such piece belong to word 0."""
    word, words = -1, []
    for piece in pieces:
        word += piece.startswith(WORD_START) or word < 0
        words.append(word)
    return words


def subword_paths(out_dir: Path, cfg: SubwordConfig, src: str, tgt: str) -> tuple[Path, Path]:
    if cfg.joint:
        return (out_dir / "spm.model",) * 2
    return out_dir / f"spm.{src}.model", out_dir / f"spm.{tgt}.model"


def train_sentencepiece(lines: Iterable[str], prefix: Path, cfg: SubwordConfig, section: str = "subword") -> None:
    """Train one model on `lines`, writing `prefix`.model and `prefix`.vocab; errors name `section`.vocab_size."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_prefix=str(prefix), vocab_size=cfg.vocab_size,
            model_type=cfg.model_type, character_coverage=cfg.character_coverage,
            input_sentence_size=cfg.input_sentence_size, shuffle_input_sentence=True,
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, minloglevel=2,
        )
    except RuntimeError as err:
        raise SeqattnError(f"{section}: sentencepiece training failed: {err} (adjust {section}.vocab_size)") from None


def build_tokenizers(
    out_dir: Path, cfg: SubwordConfig, src: str, tgt: str,
    src_lines: list[str], tgt_lines: list[str],
) -> tuple[Tokenizer, Tokenizer]:
    """Train the subword model(s) on the training text unless they exist, then load them."""
    if cfg.model_type not in MODEL_TYPES:
        raise SeqattnError(f"subword.model_type: {cfg.model_type!r} is not {' or '.join(MODEL_TYPES)}")
    src_path, tgt_path = subword_paths(out_dir, cfg, src, tgt)
    if cfg.joint and not src_path.is_file():
        train_sentencepiece(src_lines + tgt_lines, src_path.with_suffix(""), cfg)
    if not cfg.joint:
        for path, lines in ((src_path, src_lines), (tgt_path, tgt_lines)):
            if not path.is_file():
                train_sentencepiece(lines, path.with_suffix(""), cfg)
    return Tokenizer(src_path), Tokenizer(tgt_path)
