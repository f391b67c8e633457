"""Caption data: the three annotation layouts, bad images, word vocabularies and image transforms."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from seqattn.config import CaptionDataConfig
from seqattn.data import (
    ImageFolderDataset, Tokenizer, WordVocab, build_caption_vocab, image_transform, list_images, load_image,
    read_captions,
)
from seqattn.data.images import image_problem
from seqattn.data.vocab import words
from seqattn.errors import SeqattnError

NAMES = ["1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg", "1002674143_1b742ab4b8.jpg"]


@pytest.fixture
def tiny_flickr(tmp_path: Path, flickr8k: Path) -> Path:
    """Three real Flickr8k images in the official layout: train lists the first two, dev the third."""
    (tmp_path / "images").mkdir()
    token_lines = (flickr8k / "Flickr8k.token.txt").read_text(encoding="utf-8").splitlines()
    keep = [line for line in token_lines if line.split("#")[0] in NAMES]
    (tmp_path / "Flickr8k.token.txt").write_text("\n".join(keep) + "\n", encoding="utf-8")
    for name in NAMES:
        shutil.copy(flickr8k / "images" / name, tmp_path / "images" / name)
    (tmp_path / "train.txt").write_text(f"{NAMES[0]}\n{NAMES[1]}\n")
    (tmp_path / "dev.txt").write_text(f"{NAMES[2]}\n")
    return tmp_path


def flickr_cfg(folder: Path, **kw) -> CaptionDataConfig:
    return CaptionDataConfig(dataset=str(folder), splits={"train": "train.txt", "valid": "dev.txt"}, **kw)


def test_flickr8k_layout_real_data(flickr8k: Path) -> None:
    cfg = CaptionDataConfig(root=str(flickr8k.parent), dataset=flickr8k.name)
    train, valid = read_captions(cfg, "train"), read_captions(cfg, "valid")
    assert (len(train), len(valid)) == (753, 113)
    assert all(len(c) == 5 for c in train.captions + valid.captions)
    assert valid.images[0] == flickr8k / "images" / "2090545563_a4e66ec76b.jpg"
    assert not set(train.images) & set(valid.images)
    token_lines = (flickr8k / "Flickr8k.token.txt").read_text(encoding="utf-8").splitlines()
    name, caption = token_lines[0].split("\t")
    i = train.images.index(flickr8k / "images" / name.split("#")[0])
    assert train.captions[i][0] == caption.strip()


def test_missing_test_list_names_file_and_option(flickr8k: Path) -> None:
    cfg = CaptionDataConfig(root=str(flickr8k.parent), dataset=flickr8k.name)  # default test: Flickr_8k.testImages.txt
    with pytest.raises(SeqattnError, match="testImages.txt: split list not found; check captions.splits.test"):
        read_captions(cfg, "test")


def test_malformed_token_line_names_file_and_line(tiny_flickr: Path) -> None:
    path = tiny_flickr / "Flickr8k.token.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace("\t", " ")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SeqattnError, match=re.escape(f"{path} line 4: expected NAME.jpg#k<TAB>caption")):
        read_captions(flickr_cfg(tiny_flickr), "train")


def test_split_image_without_captions_names_both_files(tiny_flickr: Path) -> None:
    (tiny_flickr / "dev.txt").write_text("nope.jpg\n")
    message = f"{tiny_flickr / 'dev.txt'}: image nope.jpg has no captions in {tiny_flickr / 'Flickr8k.token.txt'}"
    with pytest.raises(SeqattnError, match=re.escape(message)):
        read_captions(flickr_cfg(tiny_flickr), "valid")


def test_missing_image_stops_unless_skipped(tiny_flickr: Path) -> None:
    gone = tiny_flickr / "images" / NAMES[0]
    gone.unlink()
    with pytest.raises(SeqattnError, match=re.escape(f"{gone}: image missing; ") + ".*captions.skip_bad_images=true"):
        read_captions(flickr_cfg(tiny_flickr), "train")
    logged: list[str] = []
    train = read_captions(flickr_cfg(tiny_flickr, skip_bad_images=True), "train", log=logged.append)
    assert train.images == [tiny_flickr / "images" / NAMES[1]] and len(train.captions) == 1
    assert logged == [f"train: skipped 1 missing or unreadable images (first: {gone})"]


def test_truncated_and_corrupt_jpegs_are_unreadable(tiny_flickr: Path) -> None:
    truncated, corrupt = tiny_flickr / "images" / NAMES[0], tiny_flickr / "images" / NAMES[1]
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # Image.verify() would pass this one
    corrupt.write_bytes(b"\xff\xd8\xff" + bytes(200))
    assert image_problem(truncated).startswith("unreadable (image file is truncated")
    assert image_problem(corrupt).startswith("unreadable (")
    assert image_problem(tiny_flickr / "images" / NAMES[2]) is None
    with pytest.raises(SeqattnError, match=re.escape(f"{truncated}: image unreadable (")):
        read_captions(flickr_cfg(tiny_flickr), "train")
    logged: list[str] = []
    with pytest.raises(SeqattnError, match="captions split 'train': no usable images left"):
        read_captions(flickr_cfg(tiny_flickr, skip_bad_images=True), "train", log=logged.append)
    assert logged == [f"train: skipped 2 missing or unreadable images (first: {truncated})"]


def test_dataset_folder_split_and_format_errors(tmp_path: Path, tiny_flickr: Path) -> None:
    with pytest.raises(SeqattnError, match=r"nope: caption dataset folder not found; .*captions.root .*SEQATTN_DATA"):
        read_captions(CaptionDataConfig(root=str(tmp_path), dataset="nope"), "train")
    with pytest.raises(SeqattnError, match="captions.splits has no 'test'; it has train, valid"):
        read_captions(flickr_cfg(tiny_flickr), "test")
    with pytest.raises(SeqattnError, match="captions.format: 'yaml' is not one of flickr8k, karpathy, coco"):
        read_captions(flickr_cfg(tiny_flickr, format="yaml"), "train")


def test_karpathy_json(tiny_flickr: Path) -> None:
    (tiny_flickr / "images" / "val").mkdir()
    shutil.move(tiny_flickr / "images" / NAMES[2], tiny_flickr / "images" / "val" / NAMES[2])
    entries = [
        {"filename": NAMES[0], "split": "train", "sentences": [{"raw": "A dog ."}, {"raw": "A dog runs"}]},
        {"filename": NAMES[1], "split": "restval", "sentences": [{"raw": "Two cats"}]},
        {"filepath": "val", "filename": NAMES[2], "split": "val", "sentences": [{"raw": "A girl "}]},
    ]
    (tiny_flickr / "dataset_coco.json").write_text(json.dumps({"images": entries}))
    splits = {"train": "train,restval", "valid": "val", "test": "test", "bad": "train,dev"}
    cfg = CaptionDataConfig(dataset=str(tiny_flickr), format="karpathy", annotations="dataset_coco.json", splits=splits)
    train, valid = read_captions(cfg, "train"), read_captions(cfg, "valid")
    assert train.images == [tiny_flickr / "images" / n for n in NAMES[:2]]
    assert train.captions == [["A dog .", "A dog runs"], ["Two cats"]]
    assert valid.images == [tiny_flickr / "images" / "val" / NAMES[2]] and valid.captions == [["A girl"]]
    with pytest.raises(SeqattnError, match="dataset_coco.json: no images in split.s. test"):
        read_captions(cfg, "test")
    with pytest.raises(SeqattnError, match="captions.splits.bad: dev is not a Karpathy split"):
        read_captions(cfg, "bad")


def test_coco_json(tiny_flickr: Path) -> None:
    (tiny_flickr / "annotations").mkdir()
    data = {
        "images": [{"id": 7, "file_name": NAMES[0]}, {"id": 3, "file_name": NAMES[1]}, {"id": 9, "file_name": "x.jpg"}],
        "annotations": [{"image_id": 3, "caption": "Two cats."}, {"image_id": 7, "caption": "A dog"},
                        {"image_id": 3, "caption": "Cats "}],
    }
    (tiny_flickr / "annotations" / "captions_val2014.json").write_text(json.dumps(data))
    splits = {"valid": "annotations/captions_val2014.json"}
    cfg = CaptionDataConfig(dataset=str(tiny_flickr), format="coco", splits=splits)
    valid = read_captions(cfg, "valid")  # image 9 has no captions and is not read
    assert valid.images == [tiny_flickr / "images" / NAMES[0], tiny_flickr / "images" / NAMES[1]]
    assert valid.captions == [["A dog"], ["Two cats.", "Cats"]]
    (tiny_flickr / "images" / "val2014").mkdir()  # the official layout: images/val2014/
    moved = tiny_flickr / "images" / "val2014" / NAMES[0]
    with pytest.raises(SeqattnError, match=re.escape(f"{moved}: image missing")):
        read_captions(cfg, "valid")
    data["annotations"].append({"image_id": 5, "caption": "?"})
    (tiny_flickr / "annotations" / "captions_val2014.json").write_text(json.dumps(data))
    with pytest.raises(SeqattnError, match="captions_val2014.json: not a COCO captions JSON"):
        read_captions(cfg, "valid")


def test_word_vocab_min_count_golden(tmp_path: Path) -> None:
    assert words("A man's T-shirt,  3 dogs!") == ["a", "mans", "tshirt", "3", "dogs"]
    vocab = WordVocab.build(["A dog runs.", "a DOG sits", "The cat runs"], min_count=2)
    assert vocab.itos == ["<pad>", "<unk>", "<s>", "</s>", "a", "dog", "runs"]  # by count, ties alphabetical
    assert (vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3) and len(vocab) == 7
    assert vocab.encode(["The dog runs!", ""]) == [[1, 5, 6], []]
    assert vocab.decode([2, *vocab.encode(["A dog, runs"])[0], 3, 0]) == "a dog runs"
    assert vocab.decode([4, 1]) == "a <unk>" and vocab.pieces([2, 4, 3]) == ["<s>", "a", "</s>"]
    vocab.save(tmp_path / "v" / "vocab.json")
    assert WordVocab.load(tmp_path / "v" / "vocab.json").itos == vocab.itos
    with pytest.raises(SeqattnError, match="vocab.json: word vocabulary not found; run `seqattn preprocess`"):
        WordVocab.load(tmp_path / "vocab.json")
    (tmp_path / "bad.json").write_text('{"itos": ["a", "b"]}')
    with pytest.raises(SeqattnError, match="bad.json: not a word vocabulary file; delete it"):
        WordVocab.load(tmp_path / "bad.json")
    with pytest.raises(SeqattnError, match="captions.min_count=0"):
        WordVocab.build(["a"], 0)


def test_build_caption_vocab_once_then_load(tmp_path: Path, flickr8k: Path) -> None:
    captions = [line.split("\t")[1] for line in (flickr8k / "Flickr8k.token.txt").read_text().splitlines()[:500]]
    cfg = CaptionDataConfig(min_count=3)
    vocab = build_caption_vocab(cfg, tmp_path, captions)
    assert isinstance(vocab, WordVocab) and (tmp_path / "vocab.json").is_file()
    assert build_caption_vocab(cfg, tmp_path, ["other words"]).itos == vocab.itos  # loaded, not rebuilt
    spm = build_caption_vocab(CaptionDataConfig(vocab="sentencepiece", vocab_size=200), tmp_path, captions)
    assert isinstance(spm, Tokenizer) and len(spm) == 200 and spm.path == tmp_path / "spm.model"
    assert spm.decode(spm.encode(["A dog runs ."])[0]) == "A dog runs ."
    with pytest.raises(SeqattnError, match="captions.vocab_size"):
        build_caption_vocab(CaptionDataConfig(vocab="sentencepiece", vocab_size=50_000), tmp_path / "big", captions)
    with pytest.raises(SeqattnError, match="captions.vocab: 'bpe' is not word or sentencepiece"):
        build_caption_vocab(CaptionDataConfig(vocab="bpe"), tmp_path, captions)


def halves(tmp_path: Path) -> Path:
    """A 64x32 image: left half black, right half white."""
    img = Image.new("RGB", (64, 32))
    img.paste((255, 255, 255), (32, 0, 64, 32))
    img.save(tmp_path / "halves.png")
    return tmp_path / "halves.png"


def test_eval_transform_center_crops_and_normalises(tmp_path: Path) -> None:
    mean, std = (0.5, 0.25, 0.0), (0.5, 0.25, 1.0)
    x = image_transform(16, mean, std, train=False)(load_image(halves(tmp_path)))  # resize to 32x16, crop the middle
    assert x.shape == (3, 16, 16)
    black = torch.tensor([(0 - m) / s for m, s in zip(mean, std)])
    white = torch.tensor([(1 - m) / s for m, s in zip(mean, std)])
    torch.testing.assert_close(x[:, :, :7], black[:, None, None].expand(3, 16, 7))
    torch.testing.assert_close(x[:, :, 9:], white[:, None, None].expand(3, 16, 7))


def test_train_transform_crops_at_random(tmp_path: Path) -> None:
    transform, img = image_transform(16, (0.0,) * 3, (1.0,) * 3, train=True), load_image(halves(tmp_path))
    torch.manual_seed(0)
    outs = [transform(img) for _ in range(12)]
    assert all(x.shape == (3, 16, 16) for x in outs)
    white_columns = {int(x[0].mean(0).gt(0.5).sum()) for x in outs}  # where the black/white edge falls
    assert len(white_columns) > 1
    assert any(x[0, 0, 0] > 0.5 for x in outs) and any(x[0, 0, 0] < 0.5 for x in outs)  # flipped and not


def test_load_and_list_images(tmp_path: Path) -> None:
    Image.new("L", (8, 6), 200).save(tmp_path / "b.png")
    Image.new("RGB", (8, 6)).save(tmp_path / "a.JPG")
    (tmp_path / "notes.md").write_text("not an image")
    assert load_image(tmp_path / "b.png").mode == "RGB"
    with pytest.raises(SeqattnError, match=re.escape(f"{tmp_path / 'notes.md'}: not a readable image")):
        load_image(tmp_path / "notes.md")
    with pytest.raises(SeqattnError, match=re.escape(f"{tmp_path / 'c.png'}: image not found")):
        load_image(tmp_path / "c.png")
    assert list_images(tmp_path) == [tmp_path / "a.JPG", tmp_path / "b.png"]
    assert list_images(tmp_path / "b.png") == [tmp_path / "b.png"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "list.txt").write_text("../b.png\n\n../a.JPG\n")
    assert list_images(tmp_path / "sub" / "list.txt") == [tmp_path / "sub" / "../b.png", tmp_path / "sub" / "../a.JPG"]
    (tmp_path / "sub" / "list.txt").write_text("../b.png\nb.png\n")
    with pytest.raises(SeqattnError, match=re.escape(f"list.txt line 2: {tmp_path / 'sub' / 'b.png'} not found")):
        list_images(tmp_path / "sub" / "list.txt")
    with pytest.raises(SeqattnError, match="no .jpg/.jpeg/.png images in this folder"):
        list_images(tmp_path / "sub")
    with pytest.raises(SeqattnError, match="no such image, image folder or .txt list"):
        list_images(tmp_path / "missing")
    dataset = ImageFolderDataset(list_images(tmp_path), image_transform(4, (0.0,) * 3, (1.0,) * 3, train=False))
    assert len(dataset) == 2 and dataset[1].shape == (3, 4, 4)
    torch.testing.assert_close(dataset[1], torch.full((3, 4, 4), 200 / 255))
