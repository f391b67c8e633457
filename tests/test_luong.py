"""Luong et al. 2015: score golden values, local windows, the reversed source, teacher forcing =
stepwise decoding, padding invariance, overfitting a tiny batch, beam of one = greedy, config errors."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor

from seqattn.config import ModelConfig
from seqattn.data import collate
from seqattn.errors import SeqattnError
from seqattn.models import Seq2Seq, build_model
from seqattn.modules.attention import Attention, ConcatAttention, DotAttention, GeneralAttention, LocalAttention

from helpers import assert_beam_of_one_is_greedy, assert_overfits, assert_padding_invariant

PAD, BOS, EOS, VOCAB = 0, 2, 3, 24
ALIGNMENTS = ["global", "local-m", "local-p"]
VARIANTS = [  # score, alignment, input feeding
    ("dot", "global", True), ("general", "global", True), ("concat", "global", True),
    ("general", "local-m", True), ("general", "local-p", True), ("dot", "local-p", False),
]


def tiny(
    score: str = "general", alignment: str = "global", input_feeding: bool = True, dropout: float = 0.0,
    seed: int = 0, **options: int | bool,
) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(
        arch="luong", emb_dim=16, hidden_dim=32, attention_dim=16, dropout=dropout,
        score=score, alignment=alignment, window=2, input_feeding=input_feeding, **options,
    )
    return build_model(cfg, VOCAB, VOCAB, PAD, BOS, EOS)


def lengths_mask(lengths: list[int]) -> Tensor:
    """[B, max(lengths)] True at the first `length` positions of each row."""
    return torch.arange(max(lengths)) < torch.tensor(lengths).unsqueeze(1)


def gaussian(distance: Tensor, D: int) -> Tensor:
    """exp(-(s - p_t)^2 / (2 σ^2)), σ = D / 2 (eq. 10)."""
    return torch.exp(-distance.square() / (2 * (D / 2) ** 2))


def dot() -> Attention:
    return DotAttention()


def general() -> Attention:
    att = GeneralAttention(query_dim=2, key_dim=2)
    with torch.no_grad():
        att.W_a.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))  # swaps the two coordinates
    return att


def concat() -> Attention:
    att = ConcatAttention(query_dim=2, key_dim=2, attention_dim=1)
    with torch.no_grad():
        att.W_a.weight.copy_(torch.tensor([[1.0, 0.0]]))
        att.U_a.weight.copy_(torch.tensor([[0.0, 1.0]]))
        att.v_a.weight.fill_(2.0)
    return att


@pytest.mark.parametrize(
    "make, energies",
    [
        (dot, [-1.0, -1.0, 4.0]),  # h_t . h̄_s
        (general, [1.0, 1.0, -4.0]),  # h_t . (W_a h̄_s) with W_a h̄_s = (h̄_s2, h̄_s1)
        (concat, (2.0 * torch.tanh(torch.tensor([3.0, 2.0, 0.0]))).tolist()),  # 2 tanh(h_t1 + h̄_s2), no bias
    ],
)
def test_global_scores_golden(make, energies: list[float]) -> None:
    att = make()
    h_t = torch.tensor([[1.0, -1.0]])
    h_bar = torch.tensor([[[1.0, 2.0], [0.0, 1.0], [3.0, -1.0], [5.0, 5.0]]])  # last one is padding
    mask = torch.tensor([[True, True, True, False]])
    context, alpha = att(h_t, *att.precompute(h_bar, h_bar), mask)
    expected = torch.cat([torch.tensor(energies).softmax(0), torch.zeros(1)])
    torch.testing.assert_close(alpha[0], expected)
    torch.testing.assert_close(context[0], expected @ h_bar[0])
    # many queries at once give the rows of one query at a time
    queries = torch.stack([h_t, torch.tensor([[0.5, 2.0]])], dim=1)  # [1, 2, 2]
    contexts, alphas = att(queries, *att.precompute(h_bar, h_bar), mask)
    torch.testing.assert_close(alphas[:, 0], alpha)
    torch.testing.assert_close(contexts[:, 1], att(queries[:, 1], *att.precompute(h_bar, h_bar), mask)[0])


def test_local_p_window_padding_and_differentiable_position() -> None:
    torch.manual_seed(0)
    D = 2
    att = LocalAttention(DotAttention(), window=D, query_dim=4, predictive=True)
    h_bar = torch.randn(2, 9, 4)
    mask = lengths_mask([9, 6])
    h_t = torch.randn(2, 3, 4)  # three decoder steps at once
    context, alpha = att(h_t, h_bar, h_bar, mask)

    S = mask.sum(-1, keepdim=True).float()  # [B, 1]
    p = S * torch.sigmoid(att.v_p(torch.tanh(att.W_p(h_t)))).squeeze(-1)  # eq. 9, [B, T]
    distance = torch.arange(9.0) - p.unsqueeze(-1)  # [B, T, S]
    inside = distance.abs().le(D) & mask.unsqueeze(1)
    assert (inside.any(-1)).all() and (~inside & mask.unsqueeze(1)).any()  # real words on both sides
    assert alpha[~inside].abs().max() == 0 and (alpha[inside] > 0).all()
    # softmax within the window times the Gaussian, not renormalised
    align = (h_t @ h_bar.transpose(1, 2)).masked_fill(~inside, float("-inf")).softmax(-1)
    torch.testing.assert_close(alpha, align * gaussian(distance, D))
    torch.testing.assert_close(context, alpha @ h_bar)
    assert (alpha.sum(-1) < 1).all()
    # one step at a time gives the same rows
    torch.testing.assert_close(att(h_t[:, 1], h_bar, h_bar, mask)[1], alpha[:, 1])

    (alpha * torch.randn_like(alpha)).sum().backward()  # p_t reaches the loss through the Gaussian
    assert att.W_p.weight.grad.abs().sum() > 0 and att.v_p.weight.grad.abs().sum() > 0


def test_local_m_centres_at_t() -> None:
    D = 2
    att = LocalAttention(DotAttention(), window=D, query_dim=3, predictive=False)
    h_bar = torch.randn(2, 8, 3)
    mask = lengths_mask([8, 5])
    h_t = torch.zeros(2, 3)  # equal scores: align is uniform over the window
    _, alpha = att(h_t, h_bar, h_bar, mask, t=torch.tensor([3, 6]))
    s = torch.arange(8.0)
    expected = torch.zeros(2, 8)
    expected[0, 1:6] = gaussian(s[1:6] - 3, D) / 5  # window [1, 5] around p_t = t = 3
    expected[1, 2:5] = gaussian(s[2:5] - 4, D) / 3  # t = 6 is past the last word: p_t = 4, padding from 5
    torch.testing.assert_close(alpha, expected)
    # many steps at once: t [B, T], each row peaks at its own step
    _, alphas = att(torch.zeros(2, 4, 3), h_bar, h_bar, mask, t=torch.arange(4).expand(2, 4))
    assert alphas.argmax(-1).equal(torch.arange(4).expand(2, 4))
    with pytest.raises(ValueError, match="step index"):
        att(h_t, h_bar, h_bar, mask)


def test_decoder_starts_from_the_encoder_final_states() -> None:
    model = tiny(encoder_layers=2, decoder_layers=2).eval()
    batch = collate([[5, 6, 7], [8, 9]], [[4], [5]], [0, 1], PAD, BOS, EOS)
    _, (h_n, c_n) = model.encoder(batch.src, batch.src_mask)  # [L, B, H]
    h, c = model.encode(batch.src, batch.src_mask)["lstm"]  # [B, L, H]
    assert model.decoder.bridge is None
    torch.testing.assert_close(h, h_n.transpose(0, 1))
    torch.testing.assert_close(c, c_n.transpose(0, 1))
    bridged = tiny(encoder_layers=1, decoder_layers=3)
    h, c = bridged.encode(batch.src, batch.src_mask)["lstm"]
    assert h.shape == c.shape == (2, 3, 32)


def test_reversed_source_is_read_backwards_and_annotated_in_order() -> None:
    """reverse_source: the encoder's states equal those of the same weights over each sentence typed
    backwards (padding left where it is), put back in source order; the final state is word 1's."""
    backwards, forwards = tiny(reverse_source=True, encoder_layers=2), tiny(encoder_layers=2)
    backwards.eval(), forwards.eval()
    batch = collate([[5, 6, 7, 8], [9, 10]], [[4], [5]], [0, 1], PAD, BOS, EOS)  # src rows end with EOS
    h, (h_n, c_n) = backwards.encoder(batch.src, batch.src_mask)
    typed_src = batch.src.clone()
    for row, n in enumerate(batch.src_mask.sum(1).tolist()):  # EOS first: the whole row backwards
        typed_src[row, :n] = batch.src[row, :n].flip(0)
    h_typed, (h_n_typed, c_n_typed) = forwards.encoder(typed_src, batch.src_mask)
    for row, n in enumerate(batch.src_mask.sum(1).tolist()):
        torch.testing.assert_close(h[row, :n], h_typed[row, :n].flip(0))
        assert h[row, n:].eq(0).all()
    torch.testing.assert_close((h_n, c_n), (h_n_typed, c_n_typed))
    assert_padding_invariant(tiny("general", "local-p", reverse_source=True).eval())


@pytest.mark.parametrize("input_feeding", [True, False])
@pytest.mark.parametrize("alignment", ALIGNMENTS)
def test_teacher_forcing_equals_stepwise_decoding(alignment: str, input_feeding: bool) -> None:
    model = tiny(alignment=alignment, input_feeding=input_feeding, encoder_layers=1, decoder_layers=2).eval()
    batch = collate([[5, 6, 7], [8, 9]], [[4, 5, 6], [7, 8, 9, 10]], [0, 1], PAD, BOS, EOS)  # targets outrun sources
    logits, alpha, _ = model(batch.src, batch.src_mask, batch.tgt_in)
    state = model.encode(batch.src, batch.src_mask)
    for i in range(batch.tgt_in.size(1)):
        log_probs, step_alpha, state = model.step(batch.tgt_in[:, i], state)
        torch.testing.assert_close(log_probs, logits[:, i].log_softmax(-1), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(step_alpha, alpha[:, i])


@pytest.mark.parametrize("score, alignment", [("dot", "global"), ("concat", "local-m"), ("general", "local-p")])
def test_padding_does_not_change_a_sentence(score: str, alignment: str) -> None:
    assert_padding_invariant(tiny(score, alignment).eval())



@pytest.mark.parametrize("score, alignment, input_feeding", VARIANTS)
def test_every_variant_overfits_a_tiny_batch(score: str, alignment: str, input_feeding: bool) -> None:
    assert_overfits(tiny(score, alignment, input_feeding, dropout=0.1))



@pytest.mark.parametrize("alignment, seed, eos_bias", [("global", 2, 0.3), ("local-m", 1, 0.5), ("local-p", 4, 0.25)])
def test_beam_of_one_is_greedy(alignment: str, seed: int, eos_bias: float) -> None:
    model = tiny("concat", alignment, seed=seed).eval()
    with torch.no_grad():  # sharper distributions, EOS just likely enough that some sentences end
        model.decoder.W_s.weight.mul_(4.0)
        model.decoder.W_s.bias[EOS] += eos_bias
    gen = torch.Generator().manual_seed(1)
    lengths = [4, 7, 2, 5, 8, 6]
    src = torch.randint(EOS + 1, VOCAB, (len(lengths), max(lengths)), generator=gen)
    src_mask = lengths_mask(lengths)
    src = src.masked_fill(~src_mask, PAD)
    src[torch.arange(len(lengths)), torch.tensor(lengths) - 1] = EOS
    assert_beam_of_one_is_greedy(model, src, src_mask)


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("score", "bilinear", "model.score: unknown score 'bilinear'"),
        ("alignment", "local", "model.alignment: unknown alignment 'local'"),
        ("window", 0, "model.window: local attention needs"),
    ],
)
def test_bad_options_are_named(option: str, value: object, message: str) -> None:
    cfg = ModelConfig(**{"arch": "luong", "hidden_dim": 8, "alignment": "local-p", option: value})
    with pytest.raises(SeqattnError, match=message):
        build_model(cfg, VOCAB, VOCAB, PAD, BOS, EOS)
