"""CIFAR-10 from the shared JPEG archive: unpacked once (atomically) into classify.cache_dir, seeded
subsets, and the images normalised by the CIFAR-10 channel statistics (the backbones learn from
scratch). Training images are augmented by random crops and flips drawn from the global torch
generator, which every checkpoint saves, so a resumed run draws what the uninterrupted one would.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset
from torchvision import datasets, transforms

from seqattn.config import ClassifyConfig, Config, data_root
from seqattn.errors import SeqattnError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # per-channel statistics of the 50,000 training images
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
DEFAULT_CACHE = Path("~/.cache/seqattn/cifar10")
MARKER = ".seqattn-unpacked"  # written last inside the unpacked folder: the archive's name and size


def archive_path(cfg: ClassifyConfig) -> Path:
    """classify.archive, absolute or under the data root ($SEQATTN_DATA_ROOT, else ../shared/data)."""
    path = data_root(None) / cfg.archive
    if not path.is_file():
        raise SeqattnError(
            f"classify.archive: {path} not found; set classify.archive to the CIFAR-10 JPEG .tar.gz "
            "(absolute, or under the data root: $SEQATTN_DATA_ROOT, else ../shared/data)"
        )
    return path


def unpack_archive(archive: Path, cache_dir: Path) -> Path:
    """Unpack `archive` into `cache_dir` once -> `cache_dir`. It is extracted into a temporary
    sibling folder that is then renamed, so `cache_dir` exists only whole; later calls reuse it."""
    stamp = f"{archive.name} {archive.stat().st_size}\n"
    if cache_dir.exists():
        marker = cache_dir / MARKER
        if not marker.is_file() or marker.read_text(encoding="utf-8") != stamp:
            raise SeqattnError(
                f"classify.cache_dir: {cache_dir} does not hold {archive} unpacked by seqattn; "
                "delete that folder or choose another classify.cache_dir"
            )
        return cache_dir
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.", dir=cache_dir.parent))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        (tmp / MARKER).write_text(stamp, encoding="utf-8")
        os.rename(tmp, cache_dir)
    except tarfile.TarError as err:
        raise SeqattnError(f"classify.archive: {archive} is not a readable .tar.gz ({err})") from None
    except OSError:
        if not (cache_dir / MARKER).is_file():  # else another process unpacked it first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cache_dir


def cifar_transform(size: int, augment: bool) -> transforms.Compose:
    """JPEG -> normalised tensor [3, size, size]; `augment`: random crop of the image padded by
    size/8 pixels (4 at 32x32) and horizontal flips."""
    steps: list[Any] = [] if size == 32 else [transforms.Resize(size)]
    if augment:
        steps += [transforms.RandomCrop(size, padding=size // 8), transforms.RandomHorizontalFlip()]
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)])


def seeded_subset(dataset: Dataset, n: int, seed: int) -> Dataset:
    """The first `n` images of a seeded shuffle of `dataset` (all of it when `n` is 0)."""
    if n == 0 or n >= len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, order[:n].tolist())


def load_cifar10(cfg: Config) -> tuple[Dataset, Dataset, list[str]]:
    """(training images, test images, class names) from the unpacked archive, subsets as configured."""
    c = cfg.classify
    archive = archive_path(c)
    root = unpack_archive(archive, Path(c.cache_dir or DEFAULT_CACHE).expanduser())
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise SeqattnError(f"classify.archive: {archive} has no {split}/ folder; "
                               "expected train/<class>/*.jpg and test/<class>/*.jpg")
    size = cfg.backbone.image_size
    train = datasets.ImageFolder(str(root / "train"), cifar_transform(size, c.augment))
    test = datasets.ImageFolder(str(root / "test"), cifar_transform(size, False))
    if train.classes != test.classes:
        raise SeqattnError(f"classify.archive: {archive} has classes {train.classes} in train/ "
                           f"but {test.classes} in test/")
    seed = cfg.train.seed
    return seeded_subset(train, c.train_images, seed), seeded_subset(test, c.test_images, seed), train.classes
