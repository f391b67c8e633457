"""The nearest-neighbour captioning baseline (Devlin et al. 2015, "Exploring Nearest Neighbor
Approaches for Image Captioning"): a test image gets a caption of the training image whose encoder
features are most similar, so any captioner must beat copying."""
from __future__ import annotations

import torch.nn.functional as F
from sacrebleu import sentence_bleu
from torch import Tensor


def consensus_caption(captions: list[str]) -> str:
    """The caption that agrees most with the others of its image (highest sentence BLEU against them)."""
    if len(captions) == 1:
        return captions[0]
    scores = [sentence_bleu(c, captions[:i] + captions[i + 1 :]).score for i, c in enumerate(captions)]
    return captions[scores.index(max(scores))]


def nearest_neighbour_captions(train_grids: Tensor, train_captions: list[list[str]], query_grids: Tensor) -> list[str]:
    """train_grids [N, L, D] with their captions, query_grids [M, L, D] -> M captions: each query copies
    the consensus caption of the training image with the most cosine-similar mean annotation vector."""
    train = F.normalize(train_grids.float().mean(1), dim=-1)  # [N, D]
    query = F.normalize(query_grids.float().mean(1), dim=-1)  # [M, D]
    nearest = (query @ train.T).argmax(-1)  # [M]
    return [consensus_caption(train_captions[i]) for i in nearest.tolist()]
