"""Greedy search, beam search and sampling on tiny random RNN models and on hand-built
log-probability tables."""
from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from seqattn.config import ModelConfig, SearchConfig
from seqattn.errors import SeqattnError
from seqattn.models import Output, Seq2Seq, build_model
from seqattn.search import Hypothesis, beam_search, coverage_penalty, greedy_search, length_penalty, sample, search
from seqattn.search import hypothesis
from seqattn.search.hypothesis import block_repeated_ngrams, top_k_rows
from seqattn.search.sampling import truncate

from helpers import assert_beam_of_one_is_greedy, random_sources

PAD, BOS, EOS = 0, 1, 2
VOCAB = 30
MAX_LEN = {"max_len_a": 1.0, "max_len_b": 3}


def batch(lengths: list[int], seed: int = 0) -> tuple[Tensor, Tensor]:
    return random_sources(lengths, VOCAB, PAD, EOS, seed)


def tiny_model(arch: str, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(arch=arch, emb_dim=16, hidden_dim=32, attention_dim=16, readout_dim=32, dropout=0.0)
    model = build_model(cfg, VOCAB, VOCAB, PAD, BOS, EOS).eval()
    with torch.no_grad():  # sharper, EOS-prone distributions: searches that end and disagree
        model.decoder.W_o.weight.mul_(4.0)
        model.decoder.W_o.bias[EOS] += 1.0
    return model


def max_len(n: int) -> int:
    return int(MAX_LEN["max_len_a"] * n + MAX_LEN["max_len_b"])


class TableModel(Seq2Seq):
    """log p(y_i | y_{i-1}) from a fixed [V, V] table; attention over the source from a fixed
    [V, S] table by y_{i-1} when given (sources of length S), else uniform."""

    def __init__(self, table: Tensor, attention: Tensor | None = None) -> None:
        super().__init__(PAD, BOS, EOS)
        self.table, self.attention = table, attention

    def encode(self, src: Tensor, src_mask: Tensor) -> dict[str, Tensor]:
        return {"mask": src_mask}

    def step(self, y_prev: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        if self.attention is not None:
            return self.table[y_prev], self.attention[y_prev], state
        mask = state["mask"].float()
        return self.table[y_prev], mask / mask.sum(-1, keepdim=True), state

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, need_alpha: bool = True) -> Output:
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
    assert_beam_of_one_is_greedy(model, *batch([4, 7, 2, 5, 8, 6], seed=4))


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
            alpha = model(src[i : i + 1, :n], src_mask[i : i + 1, :n], tgt_in).alpha
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


# ---- coverage penalty (GNMT, Wu et al. 2016, eq. 14) -----------------------------------------

def test_coverage_penalty_golden() -> None:
    alpha = torch.tensor([[0.5, 0.2, 0.3], [0.7, 0.1, 0.2]])  # [T=2, S=3]: coverage 1.2, 0.3, 0.5
    assert coverage_penalty(alpha, 0.4) == pytest.approx(0.4 * (math.log(1.0) + math.log(0.3) + math.log(0.5)))
    assert coverage_penalty(torch.full((4, 2), 0.5), 1.0) == 0.0  # every source word fully covered


def test_coverage_penalty_is_finite_for_words_never_attended() -> None:
    # local attention gives exactly zero outside its window: each such word costs log(1e-6), and a
    # hypothesis leaving out more words still ranks lower
    one_left_out = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # [T=2, S=3]
    two_left_out = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert coverage_penalty(one_left_out, 0.2) == pytest.approx(0.2 * math.log(1e-6))
    assert coverage_penalty(two_left_out, 0.2) == pytest.approx(0.4 * math.log(1e-6))
    assert coverage_penalty(two_left_out, 0.2) < coverage_penalty(one_left_out, 0.2) < 0.0
    # in beam search: b (.6 * .9) leaves two source words out, a (.35 * .9) one; both stay finite, a first
    a, b = 3, 4
    model = table_model({BOS: {a: 0.35, b: 0.6}, a: {EOS: 0.9}, b: {EOS: 0.9}})
    model.attention = torch.tensor([[1.0, 0.0, 0.0]] * 5)  # [V, S=3]
    model.attention[a] = torch.tensor([0.0, 1.0, 0.0])
    src, src_mask = batch([3])
    [[best, second]] = beam_search(
        model, src, src_mask, beam_size=2, nbest=2, length_penalty="none", coverage_penalty=1.0,
    )
    assert best.tokens == [a] and best.score == pytest.approx(math.log(0.35 * 0.9) + math.log(1e-6))
    assert second.tokens == [b] and second.score == pytest.approx(math.log(0.6 * 0.9) + 2 * math.log(1e-6))


def test_coverage_penalty_reranks_by_attention() -> None:
    # a (.6 * .9) beats b (.35 * .9), but attends to the first source word twice and the second barely
    a, b = 3, 4
    model = table_model({BOS: {a: 0.6, b: 0.35}, a: {EOS: 0.9}, b: {EOS: 0.9}})
    model.attention = torch.tensor([[0.5, 0.5]] * 5)  # [V, S=2]
    model.attention[[BOS, a]] = torch.tensor([0.9, 0.1])
    model.attention[b] = torch.tensor([0.1, 0.9])
    src, src_mask = batch([2])
    [[plain_best, plain_second]] = beam_search(model, src, src_mask, beam_size=2, nbest=2, length_penalty="none")
    [[best, second]] = beam_search(
        model, src, src_mask, beam_size=2, nbest=2, length_penalty="none", coverage_penalty=1.0,
    )
    assert plain_best.tokens == [a] and plain_second.tokens == [b]
    assert best.tokens == [b] and best.score == pytest.approx(math.log(0.35 * 0.9))  # coverage 1, 1: cp = 0
    assert second.tokens == [a] and second.score == pytest.approx(math.log(0.6 * 0.9) + math.log(0.1 + 0.1))


def test_coverage_penalty_only_reranks_and_zero_is_off() -> None:
    model = tiny_model("rnnsearch", seed=5)
    src, src_mask = batch([5, 2, 7], seed=5)
    plain = beam_search(model, src, src_mask, beam_size=4, nbest=4, alpha=0.8, **MAX_LEN)
    off = beam_search(model, src, src_mask, beam_size=4, nbest=4, alpha=0.8, coverage_penalty=0.0, **MAX_LEN)
    covered = beam_search(model, src, src_mask, beam_size=4, nbest=4, alpha=0.8, coverage_penalty=0.5, **MAX_LEN)
    for p, o, c in zip(plain, off, covered):
        assert [(h.tokens, h.score, h.log_prob) for h in o] == [(h.tokens, h.score, h.log_prob) for h in p]
        for h in o:  # beta = 0: exactly the GNMT length-normalised score
            assert h.score == h.log_prob / length_penalty(len(h.tokens) + h.finished, "gnmt", 0.8)
        assert sorted((h.tokens, h.log_prob) for h in c) == sorted((h.tokens, h.log_prob) for h in p)
        for h in c:
            lp = length_penalty(len(h.tokens) + h.finished, "gnmt", 0.8)
            assert h.score == pytest.approx(h.log_prob / lp + coverage_penalty(h.alpha, 0.5))
        assert [h.score for h in c] == sorted((h.score for h in c), reverse=True)


def test_coverage_penalty_needs_attention_and_a_sane_beta() -> None:
    src, src_mask = batch([3])
    with pytest.raises(SeqattnError, match="search.coverage_penalty"):
        search(tiny_model("rnnencdec"), src, src_mask, SearchConfig(beam_size=2, coverage_penalty=0.2))
    with pytest.raises(SeqattnError, match="search.coverage_penalty"):
        beam_search(tiny_model("rnnsearch"), src, src_mask, coverage_penalty=-1.0)


# ---- top-k of each row by blocks ------------------------------------------------------------------

@pytest.mark.parametrize("rows, columns", [(40, 8000), (40, 8003), (40, 700), (8, 8000)])
def test_top_k_rows_is_torch_topk(rows: int, columns: int) -> None:
    """Blocks (40 rows of 8,000 or of 8,003 with a partial last block) or torch's top-k (40 rows of
    700 columns: 10 blocks, too few to skip any; 8 rows): the same values, columns that hold them."""
    torch.manual_seed(0)
    x = torch.randn(rows, columns).log_softmax(-1)
    x[:, [0, 1]] = float("-inf")  # banned tokens
    x[:5] = x[:5].round(decimals=1)  # ties across blocks
    x[5, -1] = 10.0  # the best in the columns after the last whole block
    x[6] = float("-inf")  # a row with nothing left
    x[6, 7] = -1.0
    values, columns_of = top_k_rows(x, 10)
    expected = x.topk(10, dim=-1).values
    assert torch.equal(values, expected)
    assert torch.equal(x.gather(1, columns_of), values)
    assert columns_of[5, 0] == columns - 1 and columns_of[6, 0] == 7
    assert all(len(set(row)) == 10 for row in columns_of.tolist())  # no column twice


def test_beam_search_is_the_same_with_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step of 8 sentences x beam 5 (40 rows) over 1,000 target words takes the block path."""
    torch.manual_seed(3)
    cfg = ModelConfig(arch="rnnsearch", emb_dim=16, hidden_dim=32, attention_dim=16, readout_dim=32, dropout=0.0)
    model = build_model(cfg, VOCAB, 1000, PAD, BOS, EOS).eval()
    src, src_mask = batch([4, 7, 2, 5, 8, 6, 3, 5], seed=3)
    blocks = beam_search(model, src, src_mask, beam_size=5, nbest=5, **MAX_LEN)
    monkeypatch.setattr(hypothesis, "TOPK_MIN_ROWS", 10**9)
    plain = beam_search(model, src, src_mask, beam_size=5, nbest=5, **MAX_LEN)
    assert [[h.tokens for h in n] for n in blocks] == [[h.tokens for h in n] for n in plain]
    assert [[h.score for h in n] for n in blocks] == [[h.score for h in n] for n in plain]


# ---- no-repeat n-gram blocking -------------------------------------------------------------------

def repeated_ngrams(tokens: list[int], n: int) -> bool:
    ngrams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(ngrams) != len(set(ngrams))


def test_block_repeated_ngrams_golden() -> None:
    log_probs = torch.zeros(2, 6)
    tokens = torch.tensor([[3, 4, 5, 3, 4], [3, 4, 3, 4, 3]])
    blocked = block_repeated_ngrams(log_probs.clone(), tokens, 2).isinf()  # in place: each call on a copy
    assert blocked[0].nonzero().flatten().tolist() == [5]  # (4, 5) seen
    assert blocked[1].nonzero().flatten().tolist() == [4]  # (3, 4) seen
    assert block_repeated_ngrams(log_probs.clone(), tokens, 3).isinf().nonzero().tolist() == [[0, 5], [1, 4]]
    assert block_repeated_ngrams(log_probs.clone(), tokens, 1).isinf()[0].nonzero().flatten().tolist() == [3, 4, 5]
    assert block_repeated_ngrams(log_probs, tokens, 0) is log_probs and not log_probs.isinf().any()


@pytest.mark.parametrize("beam_size", [1, 3])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_on_a_model_that_loves_repeating(beam_size: int, n: int) -> None:
    a, b = 3, 4  # a b a b a b ... and rarely EOS
    model = table_model({BOS: {a: 0.9, EOS: 0.01}, a: {b: 0.9, EOS: 0.01}, b: {a: 0.9, EOS: 0.01}}, vocab=8)
    src, src_mask = batch([6, 4])
    loose = search(model, src, src_mask, SearchConfig(beam_size=beam_size, nbest=beam_size, **MAX_LEN))
    assert all(repeated_ngrams(h.tokens, n) for hyps in loose for h in hyps)  # the test can fail
    cfg = SearchConfig(beam_size=beam_size, nbest=beam_size, no_repeat_ngram=n, **MAX_LEN)
    for hyps in search(model, src, src_mask, cfg):
        for h in hyps:
            assert not repeated_ngrams(h.tokens, n) and math.isfinite(h.log_prob)


@pytest.mark.parametrize("sampling", [False, True])
def test_no_repeat_ngram_on_a_random_model(sampling: bool) -> None:
    model = tiny_model("rnnsearch", seed=3)
    src, src_mask = batch([9, 12, 10], seed=3)
    cfg = SearchConfig(beam_size=4, nbest=4, no_repeat_ngram=2, min_len=10, sampling=sampling)
    hyps = search(model, src, src_mask, cfg, torch.Generator().manual_seed(0))
    assert all(len(h.tokens) >= 10 and not repeated_ngrams(h.tokens, 2) for hs in hyps for h in hs)
    with pytest.raises(SeqattnError, match="search.no_repeat_ngram"):
        search(model, src, src_mask, SearchConfig(beam_size=1, nbest=1, no_repeat_ngram=-2))


# ---- sampling (Holtzman et al. 2020) -------------------------------------------------------------

def test_sampling_is_reproducible_with_a_seed() -> None:
    model = tiny_model("rnnsearch", seed=1)
    src, src_mask = batch([5, 3, 8], seed=1)
    cfg = SearchConfig(sampling=True, nbest=4, temperature=1.5, **MAX_LEN)

    def draw(seed: int) -> list[list[tuple[list[int], float]]]:
        hyps = search(model, src, src_mask, cfg, torch.Generator().manual_seed(seed))
        return [[(h.tokens, h.log_prob) for h in hs] for hs in hyps]

    first = draw(7)
    assert draw(7) == first and draw(8) != first
    assert all(len(hs) == 4 and [lp for _, lp in hs] == sorted((lp for _, lp in hs), reverse=True) for hs in first)
    assert any(len({tuple(t) for t, _ in hs}) > 1 for hs in first)  # samples of one sentence differ


@pytest.mark.parametrize("options", [{"top_k": 1}, {"temperature": 1e-6}, {"top_p": 1e-6}])
def test_sharpest_sampling_is_greedy(options: dict) -> None:
    model = tiny_model("rnnsearch", seed=4)
    src, src_mask = batch([4, 7, 2, 5, 8, 6], seed=4)
    greedy = greedy_search(model, src, src_mask, **MAX_LEN)
    sampled = sample(model, src, src_mask, generator=torch.Generator().manual_seed(0), **options, **MAX_LEN)
    for g, [s] in zip(greedy, sampled):
        assert s.tokens == g.tokens and s.finished == g.finished and s.log_prob == pytest.approx(g.log_prob)


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    probs = torch.tensor([[0.1, 0.5, 0.15, 0.25]])  # most likely first: 1 (.5), 3 (.75), 2 (.9), 0 (1)
    kept = {p: truncate(probs.log(), top_p=p).isfinite()[0].nonzero().flatten().tolist() for p in (0.3, 0.7, 0.8, 1.0)}
    assert kept == {0.3: [1], 0.7: [1, 3], 0.8: [1, 2, 3], 1.0: [0, 1, 2, 3]}
    assert torch.allclose(truncate(probs.log(), top_p=0.7).softmax(-1), torch.tensor([[0, 0.5 / 0.75, 0, 0.25 / 0.75]]))
    assert truncate(probs.log(), top_k=2).isfinite()[0].nonzero().flatten().tolist() == [1, 3]
    assert truncate(probs.log(), top_k=3, top_p=0.6).isfinite()[0].nonzero().flatten().tolist() == [1, 3]


@pytest.mark.parametrize("options,allowed", [
    ({"top_k": 2}, {3: {4, 5}, 4: {3, 5}, 5: {3, 4}}),
    ({"top_p": 0.8}, {3: {4, 5}, 4: {3, 5}, 5: {3, 4}}),
    ({"top_p": 0.5}, {3: {4}, 4: {5}, 5: {3}}),
])
def test_samples_come_only_from_allowed_tokens(options: dict, allowed: dict[int, set[int]]) -> None:
    # after BOS: 3 4 5 uniformly; then p(next | prev) = .6 and .3 for the two other words, .1 for the rest
    rows = {BOS: {3: 0.3, 4: 0.3, 5: 0.3}, 3: {4: 0.6, 5: 0.3}, 4: {5: 0.6, 3: 0.3}, 5: {3: 0.6, 4: 0.3}}
    model = table_model(rows, vocab=7)
    src, src_mask = batch([3, 5])
    hyps = sample(model, src, src_mask, nbest=40, generator=torch.Generator().manual_seed(0), **options, **MAX_LEN)
    seen = {prev: set() for prev in allowed}
    for h in (h for hs in hyps for h in hs):
        assert not h.finished and len(h.tokens) in (6, 8)  # EOS is never among the allowed tokens
        for prev, y in zip(h.tokens, h.tokens[1:]):
            seen[prev].add(y)
    assert seen == allowed  # only the allowed tokens, and all of them


def test_bad_sampling_options_are_refused() -> None:
    model = tiny_model("rnnsearch")
    src, src_mask = batch([3])
    for options, name in [({"temperature": 0.0}, "temperature"), ({"top_k": -1}, "top_k"), ({"top_p": 0.0}, "top_p"),
                          ({"top_p": 1.5}, "top_p"), ({"nbest": 0}, "nbest")]:
        with pytest.raises(SeqattnError, match=f"search.{name}"):
            search(model, src, src_mask, SearchConfig(sampling=True, **options))


@pytest.mark.parametrize("beam_size", [1, 3])
def test_pad_and_bos_are_never_emitted(beam_size: int) -> None:
    """A model that prefers PAD and BOS over everything still yields real tokens."""
    model = table_model({prev: {PAD: 0.5, BOS: 0.4} for prev in range(6)}, vocab=6)
    src, src_mask = batch([5, 3])
    for cfg in (SearchConfig(beam_size=beam_size, nbest=beam_size, **MAX_LEN),
                SearchConfig(sampling=True, nbest=2, **MAX_LEN)):
        for hyps in search(model, src, src_mask, cfg):
            assert hyps and all(PAD not in h.tokens and BOS not in h.tokens for h in hyps)


class IdsTask:
    """What Predictor asks of a task, for lists of source ids: lengths, padded batches with EOS, text."""

    def input_length(self, item: list[int]) -> int:
        return len(item)

    def collate_inputs(self, model: Seq2Seq, items: list[list[int]], device: torch.device) -> tuple[Tensor, Tensor]:
        src = torch.full((len(items), max(map(len, items)) + 1), PAD)
        for i, ids in enumerate(items):
            src[i, : len(ids) + 1] = torch.tensor(ids + [EOS])
        return src, src.ne(PAD)

    def text(self, hyp: Hypothesis) -> str:
        return " ".join(map(str, hyp.tokens))


@pytest.mark.parametrize("beam_size", [1, 3])
def test_predictor_batches_by_length_and_answers_in_input_order(beam_size: int) -> None:
    """11 inputs (equal and different lengths, an empty one) in batches of 4 sorted by length: every
    n-best list comes back at its input's place and equals decoding that input alone."""
    from seqattn.inference import Predictor

    model = tiny_model("rnnsearch")
    gen = torch.Generator().manual_seed(1)
    lengths = [5, 2, 7, 3, 3, 0, 9, 1, 4, 3, 6]
    items = [torch.randint(EOS + 1, VOCAB, (n,), generator=gen).tolist() for n in lengths]
    cfg = SearchConfig(beam_size=beam_size, nbest=beam_size, batch_size=4, length_penalty="none", **MAX_LEN)
    task = IdsTask()
    results = Predictor(task, model, cfg, torch.device("cpu")).predict(items)
    assert len(results) == len(items)
    for item, nbest in zip(items, results):
        if not item:
            assert [(h.tokens, h.score) for h in nbest] == [([], 0.0)]
            continue
        alone = search(model, *task.collate_inputs(model, [item], torch.device("cpu")), cfg)[0]
        assert [h.tokens for h in nbest] == [h.tokens for h in alone]
        assert [h.score for h in nbest] == pytest.approx([h.score for h in alone], abs=1e-5)
    assert len({tuple(nbest[0].tokens) for nbest in results}) > 3  # the inputs' outputs differ
