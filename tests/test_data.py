"""Reading parallel text (files, data root, HF datasets), subwords, filters and token batching."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from seqattn.config import DataConfig, SubwordConfig, load_config
from seqattn.data import (
    Tokenizer, build_tokenizers, collate, filter_pairs, load_split, prepare, read_lines, read_parallel, token_batches,
)
from seqattn.errors import SeqattnError


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_read_lines_keeps_unicode_separators(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.txt", "a b\r\nüber\u2028x\n\nlast")
    assert read_lines(path) == ["a b", "über\u2028x", "", "last"]


def test_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.txt", b"ok\n\xff\xfe\n")
    with pytest.raises(SeqattnError, match=re.escape(f"{path}:2: not valid UTF-8")):
        read_lines(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SeqattnError, match=re.escape(f"{tmp_path / 'nope.en'}: file not found")):
        read_parallel(tmp_path / "nope.en", tmp_path / "nope.de")


def test_line_count_mismatch_names_both_files(tmp_path: Path) -> None:
    src, tgt = write(tmp_path / "a.en", "1\n2\n3\n"), write(tmp_path / "a.de", "1\n2\n")
    with pytest.raises(SeqattnError, match=re.escape(f"{src} has 3 lines but {tgt} has 2")):
        read_parallel(src, tgt)


def test_empty_corpus_is_refused(tmp_path: Path) -> None:
    src, tgt = write(tmp_path / "a.en", "\n\n"), write(tmp_path / "a.de", "\n\n")
    with pytest.raises(SeqattnError, match=re.escape(f"{src}: the corpus is empty")):
        read_parallel(src, tgt)


def test_data_root_and_corpus_folder(small_corpus: Path) -> None:
    cfg = DataConfig(root=str(small_corpus.parent), corpus=small_corpus.name)
    src, tgt = load_split(cfg, "val")
    assert len(src) == len(tgt) == 30 and src[0].startswith("A group of men")


def test_data_root_from_environment(small_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQATTN_DATA_ROOT", str(small_corpus.parent))
    src, _ = load_split(DataConfig(corpus=small_corpus.name), "test_2016_flickr")
    assert len(src) == 20


def test_hub_local_copy_offline(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    copy = tmp_path / "hub_copy"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"en": ["a cat", "a dog"], "de": ["eine Katze", "ein Hund"]}),
        "validation": datasets.Dataset.from_dict({"en": ["a cow"], "de": ["eine Kuh"]}),
    }).save_to_disk(str(copy))
    cfg = DataConfig(root=str(tmp_path), corpus="absent", hub=str(copy), hub_splits={"val": "validation"})
    assert load_split(cfg, "train") == (["a cat", "a dog"], ["eine Katze", "ein Hund"])
    assert load_split(cfg, "val") == (["a cow"], ["eine Kuh"])
    with pytest.raises(SeqattnError, match="no split 'test'"):
        load_split(cfg, "test")


def test_hub_unreachable_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cfg = DataConfig(root=str(tmp_path), corpus="absent", hub="no-such-user/no-such-corpus")
    with pytest.raises(SeqattnError, match="could not load split 'train'.*offline, put the corpus under"):
        load_split(cfg, "train")


@pytest.mark.parametrize("model_type,joint", [("unigram", True), ("bpe", False)])
def test_sentencepiece_round_trip(small_corpus: Path, tmp_path: Path, model_type: str, joint: bool) -> None:
    src, tgt = read_parallel(small_corpus / "train.en", small_corpus / "train.de")
    cfg = SubwordConfig(model_type=model_type, vocab_size=300, joint=joint)
    src_tok, tgt_tok = build_tokenizers(tmp_path / "run", cfg, "en", "de", src, tgt)
    assert len(src_tok) == len(tgt_tok) == 300
    assert (src_tok.path == tgt_tok.path) == joint
    assert (src_tok.pad_id, src_tok.unk_id, src_tok.bos_id, src_tok.eos_id) == (0, 1, 2, 3)
    assert tgt_tok.decode(tgt_tok.encode(tgt[:5])[3]) == tgt[3]
    assert "\u2581" in "".join(src_tok.pieces(src_tok.encode([src[0]])[0]))


def test_vocabulary_too_large_is_explained(small_corpus: Path, tmp_path: Path) -> None:
    src, tgt = read_parallel(small_corpus / "val.en", small_corpus / "val.de")
    with pytest.raises(SeqattnError, match="adjust subword.vocab_size"):
        build_tokenizers(tmp_path, SubwordConfig(vocab_size=50_000), "en", "de", src, tgt)


def test_missing_tokenizer_says_run_preprocess(tmp_path: Path) -> None:
    with pytest.raises(SeqattnError, match="run `seqattn preprocess` first"):
        Tokenizer(tmp_path / "spm.model")


def test_filters_drop_long_empty_and_unbalanced_pairs() -> None:
    src = [[1] * 5, [1] * 50, [], [1] * 2, [1] * 4]
    tgt = [[1] * 6, [1] * 5, [1] * 3, [1] * 9, [1] * 4]
    assert filter_pairs(src, tgt, max_len=20, max_ratio=3.0) == [0, 4]


def test_prepare_reports_dropped_pairs(small_corpus: Path, tmp_path: Path) -> None:
    cfg = load_config(None, [f"out_dir={tmp_path / 'run'}", f"data.root={small_corpus}", "data.corpus=.",
                             "subword.vocab_size=300", "data.max_len=12"])
    messages: list[str] = []
    _, _, train, valid = prepare(cfg, log=messages.append)
    dropped = int(re.search(r"(\d+) dropped", messages[0]).group(1))
    assert dropped > 0 and len(train) == 400 - dropped and len(valid) == 30
    assert max(map(len, train.src_ids)) <= 12


def test_token_batches_cover_each_sentence_once_within_budget() -> None:
    lengths = [(7 * i) % 23 + 1 for i in range(200)]
    batches = token_batches(lengths, batch_tokens=60, shuffle=True, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(200))
    assert all(len(b) * max(lengths[i] for i in b) <= 60 for b in batches)
    assert batches == token_batches(lengths, 60, shuffle=True, seed=3)  # a pure function of the seed
    assert batches != token_batches(lengths, 60, shuffle=True, seed=4)
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sum(spread) / len(spread) <= 2  # bucketing: similar lengths together


def test_collate_adds_bos_eos_and_pads() -> None:
    batch = collate([[5, 6], [7]], [[8], [9, 10, 11]], [0, 1], pad_id=0, bos_id=2, eos_id=3)
    assert batch.src.tolist() == [[5, 6, 3], [7, 3, 0]]
    assert batch.src_mask.tolist() == [[True, True, True], [True, True, False]]
    assert batch.tgt_in.tolist() == [[2, 8, 0, 0], [2, 9, 10, 11]]
    assert batch.tgt_out.tolist() == [[8, 3, 0, 0], [9, 10, 11, 3]]
    assert batch.ntokens == 6
