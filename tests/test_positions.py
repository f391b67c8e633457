"""Local attention's positions p_t over a forced pass, scored against gold links: local-m's recorded
p_t is t, local-p's lies in [0, S] and is the same batched and alone, the scores by hand."""
from __future__ import annotations

import pytest
import torch

from seqattn.alignment import Pieces
from seqattn.alignment.positions import forced_positions, local_attention, position_score, reference_positions
from seqattn.errors import SeqattnError
from seqattn.evaluation.alignment import Gold

from test_luong import tiny

CPU = torch.device("cpu")


def pairs() -> tuple[list[Pieces], list[Pieces]]:
    """Three sentence pairs of different lengths (ids in the tiny models' vocabulary, no EOS)."""
    sources = [Pieces([5, 6, 7, 8, 9], [0, 0, 1, 2, 3]), Pieces([10, 11], [0, 1]), Pieces([4, 5, 6, 7, 8, 9, 10, 11], list(range(8)))]
    targets = [Pieces([12, 13, 14], [0, 1, 1]), Pieces([15, 16, 17, 18], [0, 1, 2, 3]), Pieces([19, 20], [0, 1])]
    return sources, targets


def test_local_m_positions_are_the_steps():
    sources, targets = pairs()
    positions = forced_positions(tiny(alignment="local-m"), sources, targets, batch_size=2, device=CPU)
    monotonic = reference_positions(sources, targets)["p_t = t (local-m)"]
    for p, expected, t in zip(positions, monotonic, targets):
        assert p.shape == (len(t.ids),)
        assert torch.equal(p, expected)
    assert positions[1].tolist() == [0.0, 1.0, 2.0, 2.0]  # two source pieces and EOS: capped at S - 1 = 2


def test_local_p_positions_batched_equal_alone_and_lie_in_the_source():
    model = tiny(alignment="local-p")
    sources, targets = pairs()
    batched = forced_positions(model, sources, targets, batch_size=3, device=CPU)
    alone = [forced_positions(model, [s], [t], 1, CPU)[0] for s, t in zip(sources, targets)]
    for p, q, s in zip(batched, alone, sources):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=0)
        assert 0 <= p.min() and p.max() <= len(s.ids) + 1
    assert len({round(v, 4) for p in batched for v in p.tolist()}) > 3  # predicted, not a constant


def test_position_score_by_hand():
    sources = [Pieces([1, 2, 3, 4], [0, 0, 1, 2])]  # S = 5 with EOS
    targets = [Pieces([1, 2, 3], [0, 1, 2])]
    gold = [Gold(sure={(0, 0), (2, 1)}, possible={(0, 0), (2, 1), (1, 2)})]  # target word 2: possible only
    # target 0 -> source pieces {0, 1}, p = 4.95: distance 3.95; target 1 -> piece 3, p = 0.05: distance 2.95
    score = position_score([torch.tensor([4.95, 0.05, 2.0])], sources, targets, gold, window=3)
    assert score.steps == 2
    assert score.relative == pytest.approx((4.95 / 5 + 0.05 / 5) / 2)
    assert score.in_window == pytest.approx(50.0)  # 2.95 <= 3 < 3.95
    assert score.distance == pytest.approx((3.95 + 2.95) / 2)
    assert score.at_end == pytest.approx(100.0)  # 0.99 and 0.01


def test_diagonal_reference():
    sources, targets = pairs()
    diagonal = reference_positions(sources, targets)["p_t = t S / T (diagonal)"]
    torch.testing.assert_close(diagonal[0], torch.tensor([0.0, 1.5, 3.0]))  # S = 6, T = 4 with EOS


def test_errors():
    sources, targets = pairs()
    with pytest.raises(SeqattnError, match="no local attention"):
        local_attention(tiny(alignment="global"))
    with pytest.raises(SeqattnError, match="1 sentences, but 3"):
        position_score(reference_positions(sources, targets)["p_t = t (local-m)"], sources, targets, [Gold()], 2)
    with pytest.raises(SeqattnError, match="no target word with a sure link"):
        position_score([torch.zeros(3)], sources[:1], targets[:1], [Gold()], 2)
