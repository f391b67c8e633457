"""Data: parallel text, subword and word vocabularies, filtering and batching; images and captions.

The image and caption readers (PIL) load on first use, so text-only paths never import them.
"""
from __future__ import annotations

import importlib
from typing import Any

from seqattn.data.batching import Batch, collate, filter_pairs, token_batches
from seqattn.data.corpus import load_split, read_lines, read_parallel
from seqattn.data.prepare import Split, encode_split, load_tokenizers, prepare
from seqattn.data.subwords import Tokenizer, build_tokenizers
from seqattn.data.vocab import WordVocab, build_caption_vocab

LAZY = {  # name -> module that defines it, imported when the name is first asked for
    "CaptionSplit": "captions", "read_captions": "captions",
    **{name: "images" for name in ("ImageFolderDataset", "eval_crop", "image_batches", "image_transform",
                                   "list_images", "load_image")},
}


def __getattr__(name: str) -> Any:
    if name in LAZY:
        return getattr(importlib.import_module(f"seqattn.data.{LAZY[name]}"), name)
    raise AttributeError(f"module 'seqattn.data' has no attribute {name!r}")


__all__ = [
    "Batch", "CaptionSplit", "ImageFolderDataset", "Split", "Tokenizer", "WordVocab", "build_caption_vocab",
    "build_tokenizers", "collate", "encode_split", "filter_pairs", "image_batches", "image_transform", "list_images", "load_image",
    "load_split", "load_tokenizers", "prepare", "read_captions", "read_lines", "read_parallel", "token_batches",
]
