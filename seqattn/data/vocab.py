"""Caption vocabularies: lower-cased words with a minimum count, or a sentencepiece model.

Words follow Karpathy's preprocessing (neuraltalk2 `prepro.py`, whose splits Xu et al. 2015 use):
lower-case, delete punctuation (every character that is not alphanumeric or a space, so "t-shirt"
becomes "tshirt"), split on whitespace.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from seqattn.config import CaptionDataConfig, SubwordConfig
from seqattn.data.subwords import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, train_sentencepiece
from seqattn.errors import SeqattnError

CAPTION_VOCABS = ("word", "sentencepiece")  # captions.vocab
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")  # ids 0/1/2/3, as in data.subwords


def words(text: str) -> list[str]:
    """Karpathy's caption tokenisation: "A man's T-shirt." -> ["a", "mans", "tshirt"]."""
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace()).split()


class WordVocab:
    """Words <-> ids with the interface of data.subwords.Tokenizer (pad/unk/bos/eos = 0/1/2/3)."""

    def __init__(self, itos: list[str], path: Path | None = None) -> None:
        self.itos = list(itos)  # id -> word, SPECIALS first
        self.path = path  # the file it was loaded from
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    @classmethod
    def build(cls, captions: list[str], min_count: int) -> WordVocab:
        """Every word seen at least `min_count` times, most frequent first (ties alphabetically)."""
        if min_count < 1:
            raise SeqattnError(f"captions.min_count={min_count}: give a count of at least 1")
        counts = Counter(w for caption in captions for w in words(caption))
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, lines: list[str]) -> list[list[int]]:
        """Captions -> word ids (no BOS/EOS); unknown words -> unk_id."""
        return [[self.stoi.get(w, self.unk_id) for w in words(line)] for line in lines]

    def decode(self, ids: list[int]) -> str:
        """Word ids -> words joined by spaces; pad/bos/eos are dropped, unk reads <unk>."""
        return " ".join(self.itos[i] for i in ids if i not in (self.pad_id, self.bos_id, self.eos_id))

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"itos": self.itos}, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> WordVocab:
        path = Path(path)
        if not path.is_file():
            raise SeqattnError(f"{path}: word vocabulary not found; run `seqattn preprocess` (or train) first")
        try:
            itos = json.loads(path.read_text(encoding="utf-8"))["itos"]
            valid = isinstance(itos, list) and tuple(itos[: len(SPECIALS)]) == SPECIALS
        except (json.JSONDecodeError, KeyError, TypeError):
            valid = False
        if not valid:
            raise SeqattnError(f"{path}: not a word vocabulary file; delete it and run `seqattn preprocess` again")
        return cls(itos, path)


def build_caption_vocab(cfg: CaptionDataConfig, out_dir: Path, train_captions: list[str]) -> WordVocab | Tokenizer:
    """The vocabulary `captions.vocab` asks for: built on the training captions once, then loaded.

    word: out_dir/vocab.json (captions.min_count); sentencepiece: out_dir/spm.model (captions.vocab_size).
    """
    out_dir = Path(out_dir)
    if cfg.vocab == "word":
        path = out_dir / "vocab.json"
        if not path.is_file():
            WordVocab.build(train_captions, cfg.min_count).save(path)
        return WordVocab.load(path)
    if cfg.vocab == "sentencepiece":
        path = out_dir / "spm.model"
        if not path.is_file():
            train_sentencepiece(train_captions, path.with_suffix(""), SubwordConfig(vocab_size=cfg.vocab_size), "captions")
        return Tokenizer(path)
    raise SeqattnError(f"captions.vocab: {cfg.vocab!r} is not {' or '.join(CAPTION_VOCABS)}")
