"""Shared fixtures: one torch thread (tiny models step in microseconds; thread hand-offs would
dominate) and the real data beside the repo."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqattn.config import DEFAULT_DATA_ROOT

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
    """The first lines of Multi30k En-De as a corpus folder: train 400, val 30, test 20 pairs."""
    for split, n in (("train", 400), ("val", 30), ("test_2016_flickr", 20)):
        for lang in ("en", "de"):
            lines = (multi30k / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()[:n]
            (tmp_path / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path
