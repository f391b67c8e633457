"""Show, Attend and Tell: overfitting with soft and hard attention, the REINFORCE gradient and
baseline, the doubly stochastic penalty, the gate, teacher forcing = stepwise decoding, and search."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor

from seqattn.config import ModelConfig
from seqattn.data.batching import pad
from seqattn.errors import SeqattnError
from seqattn.models import Output, Seq2Seq, build_model
from seqattn.models.show_attend_tell import ShowAttendTell, doubly_stochastic_penalty
from seqattn.modules import backbones
from seqattn.search import beam_search, greedy_search

PAD, BOS, EOS, VOCAB = 0, 2, 3, 24
L, D = 6, 8  # annotation grid: 6 locations of 8 channels
CAPTIONS = [[19, 20, 21], [22, 23, 4, 5], [6, 7], [8, 9, 10, 11, 12]]


def tiny(attend: str = "soft", seed: int = 0, **options) -> ShowAttendTell:
    torch.manual_seed(seed)
    sizes = {"emb_dim": 16, "hidden_dim": 32, "attention_dim": 16, "dropout": 0.0}
    cfg = ModelConfig(arch="show-attend-tell", attend=attend, **{**sizes, **options})
    return build_model(cfg, 0, VOCAB, PAD, BOS, EOS, annotation_dim=D)


def grids(n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random annotation grids a [n, L, D] and their all-True mask [n, L]."""
    a = torch.randn(n, L, D, generator=torch.Generator().manual_seed(seed))
    return a, torch.ones(n, L, dtype=torch.bool)


def targets(captions: list[list[int]]) -> tuple[Tensor, Tensor]:
    return pad([[BOS] + c for c in captions], PAD), pad([c + [EOS] for c in captions], PAD)


def log_likelihood(logits: Tensor, tgt_out: Tensor) -> Tensor:
    """log p(y | s, a) per caption [B] from teacher-forced logits."""
    token = logits.log_softmax(-1).gather(-1, tgt_out.unsqueeze(-1)).squeeze(-1)
    return token.masked_fill(tgt_out.eq(PAD), 0.0).sum(-1)


def end_update(model: ShowAttendTell, out: Output, tgt_out: Tensor) -> None:
    """What the trainer does after an update of the one batch `out`."""
    model.end_update({key: value.item() for key, value in model.batch_stats(out, tgt_out).items()})


@pytest.mark.parametrize("attend", ["soft", "hard"])
def test_overfits_a_tiny_batch(attend: str) -> None:
    """Training on the full loss (regulariser, REINFORCE) fits four captions; greedy search reproduces them."""
    model = tiny(attend, dropout=0.1)
    a, mask = grids(len(CAPTIONS))
    tgt_in, tgt_out = targets(CAPTIONS)
    ntokens = int(tgt_out.ne(PAD).sum())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(80):
        model.train()
        out = model(a, mask, tgt_in)
        loss = model.loss(out, tgt_out, 0.0) / ntokens
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        end_update(model, out, tgt_out)
    model.eval()
    nll = Seq2Seq.loss(model, model(a, mask, tgt_in), tgt_out, 0.0) / ntokens
    assert nll.item() < 0.05
    hyps = greedy_search(model, a, mask, max_len_a=0.0, max_len_b=8)
    assert [h.tokens for h in hyps] == CAPTIONS and all(h.finished for h in hyps)


def test_doubly_stochastic_penalty_golden() -> None:
    """sum_i (1 - sum_t alpha_ti)^2 over real steps only; the model adds lambda times it."""
    alpha = torch.tensor([[[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]],
                          [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]])  # [2, 3, 2]
    steps = torch.tensor([[True, True, False], [True, True, True]])
    # caption 0: coverage (0.7, 1.3) -> 0.09 + 0.09; caption 1: (3, 0) -> 4 + 1
    torch.testing.assert_close(doubly_stochastic_penalty(alpha, steps), torch.tensor([0.18, 5.0]))

    model = tiny("soft", doubly_stochastic=2.5).eval()
    a, mask = grids(2)
    tgt_in, tgt_out = targets([[4, 5], [6]])
    out = model(a, mask, tgt_in)
    nll = Seq2Seq.loss(model, out, tgt_out, 0.1)
    expected = nll + 2.5 * doubly_stochastic_penalty(out.alpha, tgt_out.ne(PAD)).sum()
    torch.testing.assert_close(model.loss(out, tgt_out, 0.1), expected)


def hard_batch(**options) -> tuple[ShowAttendTell, Tensor, Tensor, Tensor, Tensor]:
    model = tiny("hard", doubly_stochastic=0.0, expected_context=0.0, **options).train()
    a, mask = grids(3, seed=1)
    return model, a, mask, *targets([[4, 5, 6], [7], [8, 9]])


def grad(loss: Tensor, params: list[Tensor]) -> list[Tensor]:
    """d loss / d params, zeros where a parameter does not reach the loss."""
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def test_reinforce_gradient_reaches_the_attention() -> None:
    """With every caption sampled, f_att learns only through the REINFORCE term, whose gradient is
    that of -(r - b) sum_t log alpha_t[s_t] per caption; its value is 0 (the loss reports the NLL)."""
    model, a, mask, tgt_in, tgt_out = hard_batch(entropy_bonus=0.0)
    f_att = list(model.decoder.attention.parameters())
    model.baseline.fill_(-2.0)
    out = model(a, mask, tgt_in)
    logits, alpha, aux = out
    s, sampled = aux["locations"], aux["sampled"]
    assert sampled.all()
    log_p_s = alpha.gather(-1, s.unsqueeze(-1)).squeeze(-1).log().masked_fill(tgt_out.eq(PAD), 0.0)
    r = log_likelihood(logits, tgt_out).detach()
    nll = Seq2Seq.loss(model, out, tgt_out, 0.0)
    loss = model.loss(out, tgt_out, 0.0)
    torch.testing.assert_close(loss, nll)
    reinforce = grad(loss, f_att)
    assert all(g.abs().sum() > 0 for g in reinforce)
    for g, expected in zip(reinforce, grad(nll - ((r + 2.0) * log_p_s.sum(-1)).sum(), f_att)):
        torch.testing.assert_close(g, expected)
    assert all(g.abs().sum() == 0 for g in grad(nll, f_att))  # without the REINFORCE term


def test_entropy_bonus_adds_the_attention_entropy_gradient() -> None:
    model, a, mask, tgt_in, tgt_out = hard_batch(entropy_bonus=0.3)
    f_att = list(model.decoder.attention.parameters())
    out = model(a, mask, tgt_in)
    with_bonus = model.loss(out, tgt_out, 0.0)
    model.entropy_bonus = 0.0
    model.baseline.zero_()
    without = model.loss(out, tgt_out, 0.0)  # the same output twice: loss is a function of it
    entropy = -(out.alpha * out.alpha.log()).sum(-1).masked_fill(tgt_out.eq(PAD), 0.0).sum()
    torch.testing.assert_close(with_bonus, without)
    for g, expected in zip(grad(with_bonus - without, f_att), grad(-0.3 * entropy, f_att)):
        torch.testing.assert_close(g, expected)


def test_baseline_is_a_moving_average_of_the_log_likelihood() -> None:
    """One update per batch here: b moves at `end_update`, by the batch's mean reward; `loss` leaves it."""
    model, a, mask, tgt_in, tgt_out = hard_batch(baseline_decay=0.8)
    attributes = dict(vars(model))
    b = 0.0
    for _ in range(3):
        out = model(a, mask, tgt_in)
        model.loss(out, tgt_out, 0.0)
        assert model.baseline.item() == pytest.approx(b, rel=1e-5)
        end_update(model, out, tgt_out)
        b = 0.8 * b + 0.2 * log_likelihood(out.logits, tgt_out).mean().item()
        assert model.baseline.item() == pytest.approx(b, rel=1e-5)
        assert vars(model) == attributes  # no draws kept on the model
    # no sampled caption (eval mode, or every caption with the expected context): b stays
    for m in (model.eval(), tiny("hard", expected_context=1.0).train()):
        before = m.baseline.clone()
        out = m(a, mask, tgt_in)
        m.loss(out, tgt_out, 0.0)
        end_update(m, out, tgt_out)
        assert m.batch_stats(out, tgt_out).get("sampled", 0) == 0 and torch.equal(m.baseline, before)


def test_hard_attention_forward_leaves_nothing_on_the_modules() -> None:
    """Nothing passes from `forward` to `loss` through the model: the draws are in the output's aux,
    and no module gains or changes an attribute or a buffer."""
    model, a, mask, tgt_in, tgt_out = hard_batch()
    attributes = [dict(vars(m)) for m in model.modules()]
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    out = model(a, mask, tgt_in)
    model.loss(out, tgt_out, 0.0).backward()
    assert [dict(vars(m)) for m in model.modules()] == attributes
    assert all(torch.equal(b, buffers[name]) for name, b in model.named_buffers())
    assert out.aux["sampled"].all() and out.aux["locations"].shape == tgt_in.shape


def test_hard_attention_context_is_the_sampled_annotation() -> None:
    model = tiny("hard", gate=False)
    a, mask = grids(4)
    state = model.encode(a, mask)
    y_emb = model.decoder.embed(torch.full((4,), BOS))
    sampled = torch.tensor([True, False, True, False])
    (_, z), alpha, _, aux = model.decoder.recur(y_emb, {**state, "sampled": sampled})
    s = aux["locations"]
    torch.testing.assert_close(z[sampled], a[sampled, s[sampled]])
    torch.testing.assert_close(z[~sampled], (alpha.unsqueeze(1) @ a).squeeze(1)[~sampled])  # expected context


def test_gate_scales_the_context() -> None:
    """gate: z = beta * sum_i alpha_i a_i with beta = sigmoid(f_beta(h_{t-1})) in (0, 1); no gate: unscaled."""
    a, mask = grids(3)
    for gate in (True, False):
        model = tiny("soft", gate=gate)
        state = model.encode(a, mask)
        (_, z), alpha, _, _ = model.decoder.recur(model.decoder.embed(torch.full((3,), BOS)), state)
        expected = (alpha.unsqueeze(1) @ a).squeeze(1)  # [3, D]
        if gate:
            w, b = model.decoder.f_beta.weight, model.decoder.f_beta.bias  # [1, H], [1]: by hand from the weights
            beta = 1 / (1 + torch.exp(-((state["h"] * w[0]).sum(-1, keepdim=True) + b)))  # [3, 1]
            assert ((beta > 0) & (beta < 1)).all() and not torch.allclose(beta, torch.ones_like(beta))
            torch.testing.assert_close(z, beta * expected)
        else:
            assert model.decoder.f_beta is None
            torch.testing.assert_close(z, expected)


@pytest.mark.parametrize("attend", ["soft", "hard"])
def test_teacher_forcing_equals_stepwise_decoding(attend: str) -> None:
    model = tiny(attend).eval()
    a, mask = grids(2)
    tgt_in, _ = targets([[4, 5, 6], [7]])
    logits, alpha, _ = model(a, mask, tgt_in)
    state = model.encode(a, mask)
    for t in range(tgt_in.size(1)):
        log_probs, step_alpha, state = model.step(tgt_in[:, t], state)
        torch.testing.assert_close(log_probs, logits[:, t].log_softmax(-1), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(step_alpha, alpha[:, t])


def test_expected_context_in_training_is_soft_attention() -> None:
    """A hard-attention model that trains every caption with the expected context computes what eval does."""
    model = tiny("hard", expected_context=1.0)
    a, mask = grids(2)
    tgt_in, _ = targets([[4, 5, 6], [7]])
    train = model.train()(a, mask, tgt_in)
    evaluated = model.eval()(a, mask, tgt_in)
    for x, y in zip(train[:2], evaluated[:2]):  # logits, alpha (training adds its draws to aux)
        torch.testing.assert_close(x, y)


@pytest.mark.parametrize("attend", ["soft", "hard"])
def test_beam_of_one_is_greedy(attend: str) -> None:
    model = tiny(attend).eval()
    a, mask = grids(4)
    a = a * torch.tensor([0.5, 1.0, 2.0, 4.0]).view(4, 1, 1)
    with torch.no_grad():
        model.decoder.L_o.bias[EOS] += 0.1  # some captions end, some reach the length limit
    greedy = greedy_search(model, a, mask, max_len_a=0.0, max_len_b=5)
    beam = beam_search(model, a, mask, beam_size=1, length_penalty="none", max_len_a=0.0, max_len_b=5)
    assert any(h.finished for h in greedy) and any(not h.finished for h in greedy)
    for g, [b] in zip(greedy, beam):
        assert g.tokens == b.tokens and g.finished == b.finished
        assert b.log_prob == pytest.approx(g.log_prob, abs=1e-5)
        torch.testing.assert_close(b.alpha, g.alpha)


def test_batched_beam_equals_one_at_a_time_with_attention_over_the_grid() -> None:
    model = tiny("soft").eval()
    a, mask = grids(3)
    batched = beam_search(model, a, mask, beam_size=3, nbest=2, max_len_a=0.0, max_len_b=6)
    for i, hyps in enumerate(batched):
        alone = beam_search(model, a[i : i + 1], mask[i : i + 1], beam_size=3, nbest=2, max_len_a=0.0, max_len_b=6)[0]
        assert [h.tokens for h in hyps] == [h.tokens for h in alone]
        assert [h.score for h in hyps] == pytest.approx([h.score for h in alone], abs=1e-5)
        for h in hyps:  # one attention row over the L locations per word (and for EOS when finished)
            assert h.alpha.shape == (len(h.tokens) + h.finished, L)
            torch.testing.assert_close(h.alpha.sum(-1), torch.ones(len(h.alpha)))


def test_images_go_through_the_backbone() -> None:
    """4-D images: backbone(images) [B, D, h, w] -> annotations [B, L, D], then as cached grids."""
    torch.manual_seed(0)
    cnn = torch.nn.Conv2d(3, D, kernel_size=3, stride=2, padding=1)  # stands in for a Backbone
    cfg = ModelConfig(arch="show-attend-tell", emb_dim=16, hidden_dim=32, attention_dim=16, dropout=0.0)
    model = build_model(cfg, 0, VOCAB, PAD, BOS, EOS, backbone=cnn, grid=2).eval()
    images = torch.randn(2, 3, 16, 16)
    mask = torch.ones(2, 4, dtype=torch.bool)
    tgt_in, _ = targets([[4, 5], [6]])
    grid = backbones.annotations(cnn(images), 2)  # [2, 4, D]
    for x, y in zip(model(images, mask, tgt_in)[:2], model(grid, mask, tgt_in)[:2]):
        torch.testing.assert_close(x, y)
    with pytest.raises(SeqattnError, match="no backbone"):
        tiny()(images, mask, tgt_in)


def test_configuration_errors_are_named() -> None:
    with pytest.raises(SeqattnError, match="model.attend: unknown 'sparse'"):
        tiny("sparse")
    with pytest.raises(SeqattnError, match="model.expected_context"):
        tiny("hard", expected_context=1.5)
    with pytest.raises(SeqattnError, match="annotation_dim or backbone"):
        build_model(ModelConfig(arch="show-attend-tell"), 0, VOCAB, PAD, BOS, EOS)
