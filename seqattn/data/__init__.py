"""Data: parallel text, subword and word vocabularies, filtering and batching; images and captions."""
from seqattn.data.batching import Batch, collate, filter_pairs, token_batches
from seqattn.data.captions import CaptionSplit, read_captions
from seqattn.data.corpus import load_split, read_lines, read_parallel
from seqattn.data.images import (ImageFolderDataset, eval_crop, image_batches, image_transform, list_images,
                                 load_image)
from seqattn.data.prepare import Split, encode_split, load_tokenizers, prepare
from seqattn.data.subwords import Tokenizer, build_tokenizers
from seqattn.data.vocab import WordVocab, build_caption_vocab

__all__ = [
    "Batch", "CaptionSplit", "ImageFolderDataset", "Split", "Tokenizer", "WordVocab", "build_caption_vocab",
    "build_tokenizers", "collate", "encode_split", "filter_pairs", "image_batches", "image_transform", "list_images", "load_image",
    "load_split", "load_tokenizers", "prepare", "read_captions", "read_lines", "read_parallel", "token_batches",
]
