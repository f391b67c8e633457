"""Shared fixtures: one torch thread (tiny models step in microseconds; thread hand-offs would
dominate) and the real data beside the repo (every test that needs it goes through `real_data`)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from helpers import write_small_corpus
from seqattn.config import data_root

MULTI30K = data_root(None) / "multi30k"


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    torch.set_num_threads(1)


def real_data(path: Path) -> Path:
    """`path` under ../shared/data; missing, the test is skipped, except under CI (CI set, as .ci/run
    runs), where it fails: there the data must be in place."""
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"real data not found at {path}; CI needs ../shared/data beside the repo")
        pytest.skip(f"real data not found at {path}")
    return path


@pytest.fixture(scope="session")
def multi30k() -> Path:
    return real_data(MULTI30K)


@pytest.fixture
def small_corpus(tmp_path: Path, multi30k: Path) -> Path:
    return write_small_corpus(tmp_path, multi30k)


BABI = data_root(None) / "babi-en-10k"  # where BabiConfig() reads it too


@pytest.fixture(scope="session")
def babi() -> Path:
    """The shared bAbI tasks 1-20 (10k training questions each; task 3's training file is missing)."""
    return real_data(BABI)


FLICKR8K = data_root(None) / "flickr8k-1k"


@pytest.fixture(scope="session")
def flickr8k() -> Path:
    """The shared Flickr8k sample: 866 images, Flickr8k.token.txt and the train (753) / dev (113) lists."""
    return real_data(FLICKR8K)


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


@pytest.fixture(scope="session")
def tiny_rnnsearch(tmp_path_factory: pytest.TempPathFactory, multi30k: Path) -> Path:
    """best.pt of RNNsearch (16 units) trained 4 steps on the small corpus, shared by the tests that only decode."""
    from helpers import train_tiny

    corpus = write_small_corpus(tmp_path_factory.mktemp("corpus"), multi30k)
    return train_tiny("bahdanau2015/rnnsearch.yaml", corpus, tmp_path_factory.mktemp("rnnsearch") / "run",
                      "model.emb_dim=16", "model.hidden_dim=16", "model.attention_dim=16", "model.readout_dim=16",
                      "search.max_len_b=3", "search.max_len_a=0.5")


@pytest.fixture(scope="session")
def tiny_transformer(tmp_path_factory: pytest.TempPathFactory, multi30k: Path) -> Path:
    """best.pt of a 2+2-layer Transformer (d_model 16, 2 heads) trained 4 steps on the small corpus."""
    from helpers import train_tiny

    corpus = write_small_corpus(tmp_path_factory.mktemp("corpus"), multi30k)
    return train_tiny("vaswani2017/transformer.yaml", corpus, tmp_path_factory.mktemp("transformer") / "run",
                      "model.emb_dim=16", "model.hidden_dim=16", "model.heads=2", "model.ffn_dim=32",
                      "model.encoder_layers=2", "model.decoder_layers=2", "train.precision=fp32")
