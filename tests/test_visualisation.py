"""Alignment heatmaps: a real PNG of the right shape and JSON that round-trips exactly."""
import json

import matplotlib.image
import numpy as np
import pytest
import torch

from seqattn.errors import SeqattnError
from seqattn.visualisation import load_alignment, save_alignment

SRC = "▁the ▁agreement ▁on ▁the ▁European ▁Economic ▁Area ▁was ▁signed </s>".split()
TGT = ["▁l'", "accord", "</s>"]


def test_png_and_json_round_trip(tmp_path):
    alpha = torch.rand(len(TGT), len(SRC), dtype=torch.float64).softmax(-1)  # float64: any rounding shows
    json_path, png_path = save_alignment(alpha, SRC, TGT, tmp_path / "plots" / "sent.1")
    assert (json_path.name, png_path.name) == ("sent.1.json", "sent.1.png")
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(png_path).shape
    assert width > 300 and height > 100 and width > height  # 10 source x 3 target tokens: wide
    got, src, tgt = load_alignment(json_path)
    assert (src, tgt) == (SRC, TGT)
    assert got.shape == (3, 10) and np.array_equal(got, alpha.numpy())


def test_size_follows_tokens(tmp_path):
    _, png_path = save_alignment(np.eye(12, 2), TGT[:2], SRC + SRC[:2], tmp_path / "tall")
    height, width, _ = matplotlib.image.imread(png_path).shape
    assert height > width


def test_shape_mismatch(tmp_path):
    with pytest.raises(ValueError, match=r"\(10, 3\).*\(3, 10\)"):
        save_alignment(np.zeros((10, 3)), SRC, TGT, tmp_path / "x")
    assert not list(tmp_path.iterdir())


def test_load_errors(tmp_path):
    with pytest.raises(SeqattnError, match="not found"):
        load_alignment(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"source": ["a"], "target": ["b"], "alpha": [[0.5, 0.5]]}))
    with pytest.raises(SeqattnError, match="bad.json: not an alignment file"):
        load_alignment(bad)
