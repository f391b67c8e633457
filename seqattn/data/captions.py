"""Image-caption data: images and their reference captions in three layouts (`captions.format`).

- flickr8k: the official Flickr8k/Flickr30k files: `captions.annotations` holds `NAME.jpg#k<TAB>caption`
  lines and `captions.splits[split]` names a list file with one image name a line.
- karpathy: Karpathy's `dataset_{flickr8k,flickr30k,coco}.json` (`captions.annotations`);
  `captions.splits[split]` names his split(s): train, val, test, restval, comma-separated (e.g. "train,restval").
- coco: COCO captions JSON (images[].id/file_name, annotations[].image_id/caption); `captions.splits[split]`
  names the JSON of that split (e.g. annotations/captions_val2014.json). Images are in
  `captions.images`/val2014 when that folder exists (the official layout), else in `captions.images`.

All paths are relative to the dataset folder. Every image of a split is decoded once when the split
is read; a missing or unreadable one stops with its name unless `captions.skip_bad_images` is set.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqattn.config import CaptionDataConfig
from seqattn.data.corpus import read_lines
from seqattn.data.images import image_problem
from seqattn.errors import SeqattnError

KARPATHY_SPLITS = ("train", "val", "test", "restval")
_TOKEN_LINE = re.compile(r"(.+)#\d+\t(.*)")  # NAME.jpg#k<TAB>caption


@dataclass
class CaptionSplit:
    """Images of one split with their reference captions: captions[i] describe images[i]."""

    name: str
    images: list[Path]
    captions: list[list[str]]

    def __len__(self) -> int:
        return len(self.images)


def dataset_dir(cfg: CaptionDataConfig) -> Path:
    dataset = Path(cfg.dataset).expanduser()
    folder = dataset if dataset.is_absolute() else cfg.resolved_root() / dataset
    if not folder.is_dir():
        raise SeqattnError(
            f"{folder}: caption dataset folder not found; "
            "set captions.root (or $SEQATTN_DATA_ROOT) and captions.dataset"
        )
    return folder


def read_captions(cfg: CaptionDataConfig, split: str, log: Callable[[str], None] = print) -> CaptionSplit:
    """The images and reference captions of `split` (a key of captions.splits: train, valid, test)."""
    if split not in cfg.splits:
        raise SeqattnError(f"captions.splits has no {split!r}; it has {', '.join(cfg.splits) or 'nothing'}")
    readers = {"flickr8k": _read_flickr8k, "karpathy": _read_karpathy, "coco": _read_coco}
    if cfg.format not in readers:
        raise SeqattnError(f"captions.format: {cfg.format!r} is not one of {', '.join(readers)}")
    folder = dataset_dir(cfg)
    images, captions = readers[cfg.format](cfg, folder, split)
    return _drop_bad_images(CaptionSplit(split, images, captions), cfg.skip_bad_images, log)


def _drop_bad_images(data: CaptionSplit, skip: bool, log: Callable[[str], None]) -> CaptionSplit:
    keep, bad = [], []
    for i, path in enumerate(data.images):
        problem = image_problem(path)
        if problem is None:
            keep.append(i)
        elif not skip:
            raise SeqattnError(f"{path}: image {problem}; fix the data or set captions.skip_bad_images=true to skip it")
        else:
            bad.append(path)
    if bad:
        log(f"{data.name}: skipped {len(bad)} missing or unreadable images (first: {bad[0]})")
    if not keep:
        raise SeqattnError(f"captions split {data.name!r}: no usable images left")
    return CaptionSplit(data.name, [data.images[i] for i in keep], [data.captions[i] for i in keep])


def _read_flickr8k(cfg: CaptionDataConfig, folder: Path, split: str) -> tuple[list[Path], list[list[str]]]:
    token_file = folder / cfg.annotations
    if not token_file.is_file():
        raise SeqattnError(f"{token_file}: caption file not found; check captions.annotations")
    by_name: dict[str, list[str]] = defaultdict(list)
    for number, line in enumerate(read_lines(token_file), start=1):
        if not line.strip():
            continue
        match = _TOKEN_LINE.fullmatch(line)
        if match is None:
            raise SeqattnError(f"{token_file} line {number}: expected NAME.jpg#k<TAB>caption")
        by_name[match[1]].append(match[2].strip())
    list_file = folder / cfg.splits[split]
    if not list_file.is_file():
        raise SeqattnError(f"{list_file}: split list not found; check captions.splits.{split}")
    names = [n.strip() for n in read_lines(list_file) if n.strip()]
    for name in names:
        if name not in by_name:
            raise SeqattnError(f"{list_file}: image {name} has no captions in {token_file}")
    return [folder / cfg.images / n for n in names], [by_name[n] for n in names]


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise SeqattnError(f"{path}: caption annotations not found; check captions.annotations / captions.splits")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SeqattnError(f"{path} line {err.lineno}: not valid JSON ({err.msg})") from None


def _read_karpathy(cfg: CaptionDataConfig, folder: Path, split: str) -> tuple[list[Path], list[list[str]]]:
    wanted = [s.strip() for s in cfg.splits[split].split(",")]
    unknown = [s for s in wanted if s not in KARPATHY_SPLITS]
    if unknown:
        raise SeqattnError(
            f"captions.splits.{split}: {', '.join(unknown)} is not a Karpathy split ({', '.join(KARPATHY_SPLITS)})"
        )
    path = folder / cfg.annotations
    images, captions = [], []
    try:
        for entry in _read_json(path)["images"]:
            if entry["split"] in wanted:
                images.append(folder / cfg.images / entry.get("filepath", "") / entry["filename"])
                captions.append([s["raw"].strip() for s in entry["sentences"]])
    except (KeyError, TypeError) as err:
        raise SeqattnError(f"{path}: not a Karpathy dataset JSON (missing {err}); check captions.format") from None
    if not images:
        raise SeqattnError(f"{path}: no images in split(s) {cfg.splits[split]} (captions.splits.{split})")
    return images, captions


def _read_coco(cfg: CaptionDataConfig, folder: Path, split: str) -> tuple[list[Path], list[list[str]]]:
    path = folder / cfg.splits[split]
    image_dir = folder / cfg.images
    if (image_dir / path.stem.rsplit("_", 1)[-1]).is_dir():  # captions_val2014.json -> images/val2014
        image_dir = image_dir / path.stem.rsplit("_", 1)[-1]
    data = _read_json(path)
    try:
        names = {entry["id"]: entry["file_name"] for entry in data["images"]}
        by_id: dict[Any, list[str]] = {i: [] for i in names}
        for note in data["annotations"]:
            by_id[note["image_id"]].append(note["caption"].strip())
    except (KeyError, TypeError) as err:
        raise SeqattnError(
            f"{path}: not a COCO captions JSON (missing or unknown {err}); check captions.format"
        ) from None
    ids = [i for i in names if by_id[i]]
    if not ids:
        raise SeqattnError(f"{path}: no captioned images (captions.splits.{split})")
    return [image_dir / names[i] for i in ids], [by_id[i] for i in ids]
