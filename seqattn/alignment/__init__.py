"""Word alignments read off a translation model's attention (`seqattn align`): forced attention over
words (attention.py), link extraction and symmetrisation (links.py)."""
from seqattn.alignment.attention import (
    AlignOptions, Pieces, attention_links, encode_words, hypothesis_pieces, own_translations,
)
from seqattn.alignment.links import EXTRACT, PIECES, SYMMETRIZE, symmetrize, word_links

__all__ = ["EXTRACT", "PIECES", "SYMMETRIZE", "AlignOptions", "Pieces", "attention_links", "encode_words",
           "hypothesis_pieces", "own_translations", "symmetrize", "word_links"]
