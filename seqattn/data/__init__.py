"""Data: reading parallel text, subword vocabularies, filtering and batching."""
from seqattn.data.batching import Batch, collate, filter_pairs, token_batches
from seqattn.data.corpus import load_split, read_lines, read_parallel
from seqattn.data.prepare import Split, encode_split, load_tokenizers, prepare
from seqattn.data.subwords import Tokenizer, build_tokenizers

__all__ = [
    "Batch", "Split", "Tokenizer", "build_tokenizers", "collate", "encode_split", "filter_pairs",
    "load_split", "load_tokenizers", "prepare", "read_lines", "read_parallel", "token_batches",
]
