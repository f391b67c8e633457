"""Greedy and beam search on tiny random RNN models and on hand-built log-probability tables."""
from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from seqattn.config import ModelConfig, SearchConfig
from seqattn.errors import SeqattnError
from seqattn.models import Seq2Seq, build_model
from seqattn.search import Hypothesis, beam_search, greedy_search, length_penalty, search

PAD, BOS, EOS = 0, 1, 2
VOCAB = 30
MAX_LEN = {"max_len_a": 1.0, "max_len_b": 3}


def tiny_model(arch: str, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(arch=arch, emb_dim=16, hidden_dim=32, attention_dim=16, readout_dim=32, dropout=0.0)
    model = build_model(cfg, VOCAB, VOCAB, PAD, BOS, EOS).eval()
    with torch.no_grad():  # sharper, EOS-prone distributions: searches that end and disagree
        model.decoder.W_o.weight.mul_(4.0)
        model.decoder.W_o.bias[EOS] += 1.0
    return model


def batch(lengths: list[int], seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random sources of the given lengths (EOS last), right-padded -> src, src_mask [B, S]."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), PAD)
    for i, n in enumerate(lengths):
        src[i, : n - 1] = torch.randint(EOS + 1, VOCAB, (n - 1,), generator=gen)
        src[i, n - 1] = EOS
    return src, src.ne(PAD)


def max_len(n: int) -> int:
    return int(MAX_LEN["max_len_a"] * n + MAX_LEN["max_len_b"])


class TableModel(Seq2Seq):
    """log p(y_i | y_{i-1}) from a fixed [V, V] table; uniform attention over the source."""

    def __init__(self, table: Tensor) -> None:
        super().__init__(PAD, BOS, EOS)
        self.table = table

    def encode(self, src: Tensor, src_mask: Tensor) -> dict[str, Tensor]:
        return {"mask": src_mask}

    def step(self, y_prev: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        mask = state["mask"].float()
        return self.table[y_prev], mask / mask.sum(-1, keepdim=True), state

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError


def table_model(rows: dict[int, dict[int, float]], vocab: int = 5) -> TableModel:
    """rows[prev][next] = probability; unlisted entries share what is left (EOS too)."""
    table = torch.zeros(vocab, vocab)
    for prev in range(vocab):
        given = rows.get(prev, {})
        rest = (1.0 - sum(given.values())) / (vocab - len(given))
        table[prev] = torch.tensor([given.get(y, rest) for y in range(vocab)])
    return TableModel(table.log())


@pytest.mark.parametrize("arch", ["rnnsearch", "rnnencdec"])
def test_beam_of_one_is_greedy(arch: str) -> None:
    model = tiny_model(arch, seed=4)  # a seed whose sentences both end with EOS and get cut
    src, src_mask = batch([4, 7, 2, 5, 8, 6], seed=4)
    greedy = greedy_search(model, src, src_mask, **MAX_LEN)
    beam = beam_search(model, src, src_mask, beam_size=1, length_penalty="none", **MAX_LEN)
    assert any(h.finished for h in greedy) and any(not h.finished for h in greedy)  # both endings covered
    for g, [b] in zip(greedy, beam):
        assert g.tokens == b.tokens and g.finished == b.finished
        assert b.log_prob == pytest.approx(g.log_prob, abs=1e-5)
        assert g.score == g.log_prob


@pytest.mark.parametrize("arch", ["rnnsearch", "rnnencdec"])
def test_batched_equals_one_at_a_time(arch: str) -> None:
    model = tiny_model(arch, seed=1)
    lengths = [3, 8, 5, 1, 6]
    src, src_mask = batch(lengths, seed=1)
    batched = beam_search(model, src, src_mask, beam_size=4, nbest=4, **MAX_LEN)
    greedy = greedy_search(model, src, src_mask, **MAX_LEN)
    for i, n in enumerate(lengths):
        one_src, one_mask = src[i : i + 1, :n], src_mask[i : i + 1, :n]
        [alone] = beam_search(model, one_src, one_mask, beam_size=4, nbest=4, **MAX_LEN)
        assert [h.tokens for h in batched[i]] == [h.tokens for h in alone]
        assert [h.score for h in batched[i]] == pytest.approx([h.score for h in alone], abs=1e-5)
        [g] = greedy_search(model, one_src, one_mask, **MAX_LEN)
        assert greedy[i].tokens == g.tokens and greedy[i].log_prob == pytest.approx(g.log_prob, abs=1e-5)


def test_nbest_sorted_distinct_and_led_by_the_best() -> None:
    model = tiny_model("rnnsearch", seed=2)
    src, src_mask = batch([5, 3, 7], seed=2)
    one = beam_search(model, src, src_mask, beam_size=5, nbest=1, **MAX_LEN)
    many = beam_search(model, src, src_mask, beam_size=5, nbest=3, **MAX_LEN)
    for [best], hyps in zip(one, many):
        assert len(hyps) == 3
        assert hyps[0].tokens == best.tokens and hyps[0].score == pytest.approx(best.score)
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 3


def test_beam_beats_greedy_on_a_known_table() -> None:
    # greedy: a (.6) then EOS (.4) = .24; beam 2 also keeps b (.4), whose EOS (.9) gives .36
    a, b = 3, 4
    model = table_model({BOS: {a: 0.6, b: 0.39}, a: {a: 0.3, b: 0.3, EOS: 0.4}, b: {EOS: 0.9}})
    src, src_mask = batch([3])
    [g] = greedy_search(model, src, src_mask)
    [[best, second]] = beam_search(model, src, src_mask, beam_size=2, nbest=2, length_penalty="none")
    assert g.tokens == [a] and g.log_prob == pytest.approx(math.log(0.24))
    assert best.tokens == [b] and best.finished and best.log_prob == pytest.approx(math.log(0.39 * 0.9))
    assert second.tokens == [a] and second.score == pytest.approx(math.log(0.24))


def test_model_that_never_ends_is_cut_at_max_length() -> None:
    table = torch.randn(VOCAB, VOCAB, generator=torch.Generator().manual_seed(3)).log_softmax(-1)
    table[:, EOS] = float("-inf")
    model = TableModel(table)
    lengths = [2, 6, 4]
    src, src_mask = batch(lengths)
    greedy = greedy_search(model, src, src_mask, **MAX_LEN)
    beams = beam_search(model, src, src_mask, beam_size=3, nbest=3, **MAX_LEN)
    for n, g, hyps in zip(lengths, greedy, beams):
        assert len(hyps) == 3
        for h in [g, *hyps]:
            assert not h.finished and len(h.tokens) == max_len(n) and math.isfinite(h.score)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_min_len_holds_back_eos(beam_size: int) -> None:
    model = table_model({y: {EOS: 0.9} for y in range(5)})
    src, src_mask = batch([2, 4])
    hyps = search(model, src, src_mask, SearchConfig(beam_size=beam_size, nbest=1, min_len=3))
    for [h] in hyps:
        assert h.finished and len(h.tokens) == 3
    [[h], _] = search(model, src, src_mask, SearchConfig(beam_size=beam_size, nbest=1, min_len=0))
    assert h.finished and h.tokens == []


@pytest.mark.parametrize("beam_size", [1, 3])
def test_alpha_covers_each_token_and_real_source(beam_size: int) -> None:
    lengths = [4, 7, 2]
    src, src_mask = batch(lengths)
    cfg = SearchConfig(beam_size=beam_size, nbest=beam_size, **MAX_LEN)
    for arch in ["rnnsearch", "rnnencdec"]:
        for n, hyps in zip(lengths, search(tiny_model(arch), src, src_mask, cfg)):
            for h in hyps:
                if arch == "rnnencdec":
                    assert h.alpha is None
                    continue
                assert h.alpha.shape == (len(h.tokens) + h.finished, n)
                assert torch.allclose(h.alpha.sum(-1), torch.ones(len(h.alpha)), atol=1e-5)


def test_beam_alpha_follows_its_hypothesis() -> None:
    model = tiny_model("rnnsearch", seed=4)
    src, src_mask = batch([6, 3], seed=4)
    for hyps, i in zip(beam_search(model, src, src_mask, beam_size=4, nbest=4, **MAX_LEN), range(2)):
        n = int(src_mask[i].sum())
        for h in hyps:  # teacher-forced attention of the same tokens
            tgt_in = torch.tensor([[BOS, *h.tokens, EOS][: len(h.alpha)]])
            _, alpha = model(src[i : i + 1, :n], src_mask[i : i + 1, :n], tgt_in)
            assert torch.allclose(h.alpha, alpha[0], atol=1e-5)


def test_length_penalty_golden() -> None:
    assert length_penalty(7, "none", 0.6) == 1.0
    assert length_penalty(1, "gnmt", 0.6) == 1.0
    assert length_penalty(7, "gnmt", 1.0) == 2.0
    assert length_penalty(10, "gnmt", 0.6) == pytest.approx(2.5 ** 0.6)


def test_gnmt_scores_are_normalised_log_probs() -> None:
    model = tiny_model("rnnsearch", seed=5)
    src, src_mask = batch([5, 2], seed=5)
    for hyps in beam_search(model, src, src_mask, beam_size=3, nbest=3, alpha=0.8, **MAX_LEN):
        for h in hyps:
            lp = length_penalty(len(h.tokens) + h.finished, "gnmt", 0.8)
            assert h.score == pytest.approx(h.log_prob / lp)


def test_search_dispatches_on_beam_size() -> None:
    model = tiny_model("rnnsearch")
    src, src_mask = batch([4, 2])
    greedy = greedy_search(model, src, src_mask)
    dispatched = search(model, src, src_mask, SearchConfig(beam_size=1, nbest=1))
    assert [[(h.tokens, h.log_prob)] for h in greedy] == [[(h.tokens, h.log_prob) for h in hs] for hs in dispatched]
    hyps = search(model, src, src_mask, SearchConfig(beam_size=2, nbest=2))
    assert all(len(h) == 2 and isinstance(h[0], Hypothesis) for h in hyps)


def test_bad_options_are_refused() -> None:
    model = tiny_model("rnnsearch")
    src, src_mask = batch([3])
    with pytest.raises(SeqattnError, match="nbest"):
        beam_search(model, src, src_mask, beam_size=2, nbest=3)
    with pytest.raises(SeqattnError, match="length_penalty"):
        beam_search(model, src, src_mask, length_penalty="average")
