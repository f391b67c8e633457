"""The nearest-neighbour caption baseline picks the training image by cosine similarity of mean
annotation vectors and copies its consensus caption; checked on hand-made features."""
from __future__ import annotations

import torch

from seqattn.evaluation.nearest_neighbour import consensus_caption, nearest_neighbour_captions


def test_consensus_is_the_caption_most_like_its_siblings():
    captions = ["a dog runs on the grass", "a cat sleeps", "a dog runs on the green grass", "a dog runs on grass"]
    assert consensus_caption(captions) == "a dog runs on the grass"
    assert consensus_caption(["only one"]) == "only one"
    assert consensus_caption(["y one", "y two", "y two"]) == "y two"  # a repeated caption counts with its twin


def test_each_query_copies_its_nearest_training_image():
    # mean vectors of the three training images point along x, y and z; scale does not matter (cosine)
    train = torch.tensor([[[2.0, 0, 0], [2.0, 0, 0]], [[0, 1.0, 0], [0, 3.0, 0]], [[0, 0, 1.0], [0, 0, 1.0]]])
    captions = [["x one", "x one", "x two"], ["y one", "y two", "y two"], ["z"]]
    queries = torch.tensor([[[0.1, 5.0, 0.2], [0.1, 5.0, 0.2]],   # mostly y
                            [[0.0, 0.2, 9.0], [0.2, 0.0, 9.0]],   # mostly z
                            [[1.0, 0.9, 0.0], [1.0, 0.9, 0.0]]])  # x and y, x slightly more
    assert nearest_neighbour_captions(train, captions, queries) == ["y two", "z", "x one"]
