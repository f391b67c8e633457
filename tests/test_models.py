"""Additive attention golden values, padding invariance, teacher forcing = stepwise decoding,
every model overfitting a tiny batch, and the state's reordering (Memory, lazily selected Rows)."""
from __future__ import annotations

import pytest
import torch

from seqattn.config import ModelConfig
from seqattn.data import collate
from seqattn.models import Seq2Seq, build_model
from seqattn.state import Memory, Rows, SentenceMemory, select_state
from seqattn.modules.attention import AdditiveAttention

from helpers import assert_overfits, assert_padding_invariant

PAD, BOS, EOS, VOCAB = 0, 2, 3, 24
ARCHS = ["rnnencdec", "rnnsearch"]


def tiny(arch: str, dropout: float = 0.0, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(arch=arch, emb_dim=16, hidden_dim=32, attention_dim=16, readout_dim=32, dropout=dropout)
    return build_model(cfg, VOCAB, VOCAB, PAD, BOS, EOS)


def test_additive_attention_golden() -> None:
    """e_j = v^T tanh(W s + U h_j + b), alpha = softmax(e) over unmasked j, context = sum alpha_j h_j."""
    att = AdditiveAttention(query_dim=1, key_dim=1, attention_dim=1)
    with torch.no_grad():
        att.W_a.weight.fill_(1.0)
        att.U_a.weight.fill_(2.0)
        att.U_a.bias.fill_(0.0)
        att.v_a.weight.fill_(3.0)
    s = torch.tensor([[0.5]])
    h = torch.tensor([[[0.0], [1.0], [-1.0], [7.0]]])
    mask = torch.tensor([[True, True, True, False]])
    context, alpha = att(s, *att.precompute(h, h), mask)
    e = 3.0 * torch.tanh(0.5 + 2.0 * torch.tensor([0.0, 1.0, -1.0]))
    expected = torch.cat([e.softmax(0), torch.zeros(1)])
    torch.testing.assert_close(alpha[0], expected)
    torch.testing.assert_close(context[0, 0], (expected[:3] * torch.tensor([0.0, 1.0, -1.0])).sum())
    # many queries at once give the rows of one query at a time
    queries = torch.tensor([[[0.5], [-2.0]]])
    contexts, alphas = att(queries, *att.precompute(h, h), mask)
    torch.testing.assert_close(alphas[:, 0], alpha)
    torch.testing.assert_close(contexts[:, 1], att(queries[:, 1], *att.precompute(h, h), mask)[0])


@pytest.mark.parametrize("arch", ARCHS)
def test_padding_does_not_change_a_sentence(arch: str) -> None:
    assert_padding_invariant(tiny(arch).eval())



@pytest.mark.parametrize("arch", ARCHS)
def test_teacher_forcing_equals_stepwise_decoding(arch: str) -> None:
    model = tiny(arch).eval()
    batch = collate([[5, 6, 7], [8, 9]], [[4, 5, 6], [7]], [0, 1], PAD, BOS, EOS)
    logits, alpha, _ = model(batch.src, batch.src_mask, batch.tgt_in)
    state = model.encode(batch.src, batch.src_mask)
    for i in range(batch.tgt_in.size(1)):
        log_probs, step_alpha, state = model.step(batch.tgt_in[:, i], state)
        torch.testing.assert_close(log_probs, logits[:, i].log_softmax(-1), atol=1e-5, rtol=1e-5)
        if alpha is not None:
            torch.testing.assert_close(step_alpha, alpha[:, i])


@pytest.mark.parametrize("arch", ARCHS)
def test_every_model_overfits_a_tiny_batch(arch: str) -> None:
    assert_overfits(tiny(arch, dropout=0.1))



def test_unknown_architecture_is_named() -> None:
    from seqattn.errors import SeqattnError

    with pytest.raises(SeqattnError, match="model.arch: unknown architecture 'lstm'"):
        build_model(ModelConfig(arch="lstm"), VOCAB, VOCAB, PAD, BOS, EOS)


def test_reordering_within_sentences_leaves_the_memory_in_place() -> None:
    """Beam reordering selects the hypotheses' rows but keeps a Memory (equal rows per sentence) as
    it is; selecting across sentences (expansion, pruning) selects the Memory's rows too."""
    memory = Memory(keys=torch.tensor([[0.0], [0.0], [1.0], [1.0]]))  # 2 sentences x 2 hypotheses
    state = {"h": torch.arange(4.0), "layers": [{"memory": memory}], "memory": memory}
    reordered = select_state(state, torch.tensor([1, 1, 2, 3]), within_sentences=True)
    assert reordered["h"].tolist() == [1.0, 1.0, 2.0, 3.0]
    assert reordered["memory"] is memory and reordered["layers"][0]["memory"] is memory
    pruned = select_state(state, torch.tensor([2, 3]))  # the first sentence is done
    assert isinstance(pruned["memory"], Memory) and pruned["memory"]["keys"].tolist() == [[1.0], [1.0]]
    assert pruned["layers"][0]["memory"]["keys"].tolist() == [[1.0], [1.0]]


def test_sentence_memory_is_selected_only_when_sentences_leave() -> None:
    """A SentenceMemory (one row per sentence) stays as it is through expansion to hypotheses and
    reordering within sentences, and keeps the rows `sentences` names when sentences leave."""
    memory = SentenceMemory(keys=torch.tensor([[0.0], [1.0], [2.0]]))  # 3 sentences
    state = {"h": torch.arange(3.0), "memory": memory}
    expanded = select_state(state, torch.arange(3).repeat_interleave(2))  # 2 hypotheses each
    assert expanded["h"].tolist() == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0] and expanded["memory"] is memory
    assert select_state(expanded, torch.tensor([1, 1, 2, 2, 5, 4]), within_sentences=True)["memory"] is memory
    pruned = select_state(expanded, torch.tensor([0, 1, 4, 5]), sentences=torch.tensor([0, 2]))  # sentence 1 is done
    assert pruned["h"].tolist() == [0.0, 0.0, 2.0, 2.0]
    assert isinstance(pruned["memory"], SentenceMemory) and pruned["memory"]["keys"].tolist() == [[0.0], [2.0]]


@pytest.mark.parametrize("grad", [False, True])
def test_lazy_rows_extend_as_select_then_append(grad: bool) -> None:
    """A cache selected twice (reorder, then prune) and extended equals index_select then cat, with or
    without autograd; nothing is copied before the extension."""
    cache = torch.randn(4, 2, 3, 5, requires_grad=grad)  # [B, h, t, d_k]
    new = torch.randn(2, 2, 1, 5)
    rows = select_state({"k": Rows(cache)}, torch.tensor([1, 1, 3, 0]))["k"]
    rows = select_state(rows, torch.tensor([0, 2]))
    assert rows.data is cache and rows.shape == (2, 2, 3, 5)
    with torch.set_grad_enabled(grad):
        extended = rows.extend(new, dim=2)
    expected = torch.cat([cache[[1, 3]], new], dim=2)
    torch.testing.assert_close(extended.tensor(), expected, rtol=0, atol=0)
    assert extended.tensor().requires_grad == grad
    assert Rows(cache[:, :, :0]).select(torch.tensor([0, 0])).extend(new, dim=2).tensor() is new
