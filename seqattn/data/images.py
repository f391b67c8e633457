"""Images for captioning: finding and checking files, loading them as RGB, and torchvision transforms.

Training images are resized (shorter side) and randomly cropped and flipped; evaluation images are
resized and center-cropped.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image
from torch import Tensor

from seqattn.errors import SeqattnError

if TYPE_CHECKING:  # imported on use below: torchvision loads torch._dynamo (~165 MiB), which text models never need
    from torchvision import transforms as T

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_PIL_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)  # what a bad file raises


def eval_crop(image_size: int) -> T.Compose:
    """PIL image -> the square the CNN sees at evaluation: resized, then center-cropped."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(image_size), T.CenterCrop(image_size)])


def image_transform(image_size: int, mean: Sequence[float], std: Sequence[float], train: bool) -> T.Compose:
    """PIL image -> normalised tensor [3, image_size, image_size]."""
    from torchvision import transforms as T

    if train:
        crop = T.Compose([T.Resize(image_size), T.RandomCrop(image_size), T.RandomHorizontalFlip()])
    else:
        crop = eval_crop(image_size)
    return T.Compose([crop, T.ToTensor(), T.Normalize(mean, std)])


def image_problem(path: Path) -> str | None:
    """None when `path` decodes, else why not ("missing" or "unreadable (...)").

    JPEGs are decoded at reduced scale (PIL's draft mode): about a millisecond an image, and unlike
    Image.verify() (a no-op for JPEG) it finds truncated files.
    """
    try:
        with Image.open(path) as img:
            img.draft("RGB", (1, 1))
            img.load()
    except FileNotFoundError:
        return "missing"
    except _PIL_ERRORS as err:
        return f"unreadable ({err})"
    return None


def load_image(path: Path) -> Image.Image:
    """The image at `path` as RGB."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise SeqattnError(f"{path}: image not found") from None
    except _PIL_ERRORS as err:
        raise SeqattnError(f"{path}: not a readable image ({err}); replace or remove the file") from None


def list_images(target: Path) -> list[Path]:
    """The images `seqattn caption` describes: one image file, a folder's *.jpg/*.jpeg/*.png (sorted)
    or a .txt list of paths, one a line, relative to the list's folder."""
    target = Path(target)
    if target.is_dir():
        paths = sorted(p for p in target.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not paths:
            raise SeqattnError(f"{target}: no {'/'.join(IMAGE_SUFFIXES)} images in this folder")
        return paths
    if not target.is_file():
        raise SeqattnError(f"{target}: no such image, image folder or .txt list of images")
    if target.suffix.lower() != ".txt":
        return [target]
    paths = []
    for number, line in enumerate(target.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            path = target.parent / line.strip()
            if not path.is_file():
                raise SeqattnError(f"{target} line {number}: {path} not found; paths are relative to the list's folder")
            paths.append(path)
    if not paths:
        raise SeqattnError(f"{target}: the list names no images; write one image path a line")
    return paths


class ImageFolderDataset(torch.utils.data.Dataset):
    """Images from a list of paths, each loaded and transformed to a tensor [3, H, W]."""

    def __init__(self, paths: Sequence[Path], transform: T.Compose) -> None:
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        return self.transform(load_image(self.paths[index]))  # [3, H, W]


def image_batches(paths: Sequence[Path], transform: T.Compose, batch_size: int) -> Iterator[Tensor]:
    """Consecutive batches of transformed images [b, 3, H, W], in order. No DataLoader: its iterator
    draws a seed from torch's RNG, which would make training depend on whether features were cached."""
    dataset = ImageFolderDataset(paths, transform)
    for start in range(0, len(dataset), batch_size):
        yield torch.stack([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
