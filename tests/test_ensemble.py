"""Ensembles: the mean of the members' probabilities, driven by the unchanged search."""
from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from seqattn.config import SearchConfig
from seqattn.errors import SeqattnError
from seqattn.models.ensemble import Ensemble
from seqattn.search import search
from test_search import BOS, EOS, MAX_LEN, PAD, TableModel, batch, table_model, tiny_model

CONFIGS = [SearchConfig(beam_size=1, nbest=1, **MAX_LEN), SearchConfig(beam_size=4, nbest=3, **MAX_LEN)]


class BlindTableModel(TableModel):
    """A TableModel without attention."""

    def step(self, y_prev: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, None, dict[str, Tensor]]:
        log_probs, _, state = super().step(y_prev, state)
        return log_probs, None, state


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("arch", ["rnnsearch", "rnnencdec"])
def test_ensemble_of_one_is_the_model(arch: str, cfg: SearchConfig) -> None:
    model = tiny_model(arch, seed=4)
    src, src_mask = batch([4, 7, 2, 5, 8, 6], seed=4)
    alone, ensembled = search(model, src, src_mask, cfg), search(Ensemble([model]), src, src_mask, cfg)
    for hyps, ens in zip(alone, ensembled):
        assert [(h.tokens, h.score, h.log_prob, h.finished) for h in ens] == [
            (h.tokens, h.score, h.log_prob, h.finished) for h in hyps
        ]
        for h, e in zip(hyps, ens):
            assert (h.alpha is None and e.alpha is None) or torch.equal(h.alpha, e.alpha)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_ensemble_of_two_identical_models_is_one(cfg: SearchConfig) -> None:
    model = tiny_model("rnnsearch", seed=1)
    src, src_mask = batch([3, 8, 5, 1, 6], seed=1)
    alone, ensembled = search(model, src, src_mask, cfg), search(Ensemble([model, model]), src, src_mask, cfg)
    for hyps, ens in zip(alone, ensembled):
        assert [h.tokens for h in ens] == [h.tokens for h in hyps]
        assert [h.score for h in ens] == pytest.approx([h.score for h in hyps], abs=1e-5)
        assert all(torch.allclose(h.alpha, e.alpha, atol=1e-6) for h, e in zip(hyps, ens))


def test_step_is_the_log_of_the_mean_probability_and_attention() -> None:
    a, b = 3, 4
    first = table_model({BOS: {a: 0.6, b: 0.2}})
    second = table_model({BOS: {a: 0.1, b: 0.5}})
    blind = BlindTableModel(table_model({BOS: {a: 0.2, b: 0.2}}).table)
    first.attention = torch.tensor([[0.2, 0.8]] * 5)  # [V, S=2]; second attends uniformly
    src, src_mask = batch([2])
    y = torch.tensor([BOS])

    pair = Ensemble([first, second])
    log_probs, alpha, state = pair.step(y, pair.encode(src, src_mask))
    assert log_probs[0, [a, b]].tolist() == pytest.approx([math.log((0.6 + 0.1) / 2), math.log((0.2 + 0.5) / 2)])
    assert log_probs.exp().sum().item() == pytest.approx(1.0)
    assert torch.allclose(alpha, torch.tensor([[0.35, 0.65]])) and len(state) == 2

    log_probs, alpha, _ = Ensemble([first, second, blind]).step(y, [{"mask": src_mask}] * 3)
    assert log_probs[0, a].item() == pytest.approx(math.log((0.6 + 0.1 + 0.2) / 3))
    assert torch.allclose(alpha, torch.tensor([[0.35, 0.65]]))  # the blind member does not dilute it
    assert Ensemble([blind, blind]).step(y, [{"mask": src_mask}] * 2)[1] is None


def test_forward_gives_log_mean_probabilities_and_scores_what_search_finds() -> None:
    members = [tiny_model("rnnsearch", seed=0), tiny_model("rnnencdec", seed=1)]
    ensemble = Ensemble(members)
    src, src_mask = batch([5, 3], seed=2)
    tgt_in = torch.tensor([[BOS, 5, 6, 7], [BOS, 8, 9, PAD]])
    log_probs, alpha, _ = ensemble(src, src_mask, tgt_in)
    mean = torch.stack([m(src, src_mask, tgt_in)[0].softmax(-1) for m in members]).mean(0)
    assert torch.allclose(log_probs, mean.log(), atol=1e-5)
    assert torch.allclose(log_probs.log_softmax(-1), log_probs, atol=1e-5)  # already normalised: fine as logits
    assert torch.equal(alpha, members[0](src, src_mask, tgt_in)[1])  # only the RNNsearch member attends

    for i, hyps in enumerate(search(ensemble, src, src_mask, SearchConfig(beam_size=3, nbest=3, **MAX_LEN))):
        n = int(src_mask[i].sum())
        for h in hyps:  # beam search reorders the members' states as it reorders a single model's
            tokens = [BOS, *h.tokens, EOS][: len(h.tokens) + 1 + h.finished]
            score = ensemble.score(src[i : i + 1, :n], src_mask[i : i + 1, :n],
                                   torch.tensor([tokens[:-1]]), torch.tensor([tokens[1:]]))
            assert score.item() == pytest.approx(h.log_prob, abs=1e-4)


def test_members_must_agree_on_special_ids() -> None:
    with pytest.raises(SeqattnError, match="ensemble"):
        Ensemble([])
    odd = tiny_model("rnnsearch")
    odd.eos_id = 5
    with pytest.raises(SeqattnError, match="ensemble: members disagree"):
        Ensemble([tiny_model("rnnsearch"), odd])
