"""Shared fixtures: one torch thread (tiny models step in microseconds; thread hand-offs would
dominate) and the real data beside the repo."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import write_small_corpus
from seqattn.config import DEFAULT_DATA_ROOT, data_root

MULTI30K = DEFAULT_DATA_ROOT / "multi30k"


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def multi30k() -> Path:
    if not MULTI30K.is_dir():
        pytest.skip(f"real data not found at {MULTI30K}")
    return MULTI30K


@pytest.fixture
def small_corpus(tmp_path: Path, multi30k: Path) -> Path:
    return write_small_corpus(tmp_path, multi30k)


BABI = data_root(None) / "babi-en-10k"  # where BabiConfig() reads it too


@pytest.fixture(scope="session")
def babi() -> Path:
    """The shared bAbI tasks 1-20 (10k training questions each; task 3's training file is missing)."""
    if not BABI.is_dir():
        pytest.skip(f"real data not found at {BABI}")
    return BABI


FLICKR8K = DEFAULT_DATA_ROOT / "flickr8k-1k"


@pytest.fixture(scope="session")
def flickr8k() -> Path:
    """The shared Flickr8k sample: 866 images, Flickr8k.token.txt and the train (753) / dev (113) lists."""
    if not FLICKR8K.is_dir():
        pytest.skip(f"real data not found at {FLICKR8K}")
    return FLICKR8K


@pytest.fixture(scope="session")
def tiny_flickr(tmp_path_factory: pytest.TempPathFactory, flickr8k: Path) -> Path:
    """A Flickr8k-layout dataset of 12 training and 4 dev images of the shared sample (the images
    folder is a link to the real one; the token file and split lists are cut down)."""
    folder = tmp_path_factory.mktemp("tiny_flickr")
    (folder / "images").symlink_to(flickr8k / "images")
    train = (flickr8k / "Flickr_8k.trainImages.txt").read_text().split()[:12]
    dev = (flickr8k / "Flickr_8k.devImages.txt").read_text().split()[:4]
    (folder / "Flickr_8k.trainImages.txt").write_text("\n".join(train) + "\n")
    (folder / "Flickr_8k.devImages.txt").write_text("\n".join(dev) + "\n")
    keep = set(train + dev)
    lines = (flickr8k / "Flickr8k.token.txt").read_text(encoding="utf-8").splitlines()
    (folder / "Flickr8k.token.txt").write_text(
        "\n".join(line for line in lines if line.split("#")[0] in keep) + "\n", encoding="utf-8")
    return folder
