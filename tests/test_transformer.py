"""The Transformer: multi-head attention and positions against hand computation, incremental decoding =
full recomputation, the cache following the beam, padding invariance, tied embeddings, the returned
alpha, overfitting a tiny batch, and named config errors."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import Tensor

from seqattn.config import ModelConfig
from seqattn.data import collate
from seqattn.errors import SeqattnError
from seqattn.models import build_model, map_state
from seqattn.models.transformer import TransformerSeq2Seq
from seqattn.modules.attention import MultiHeadAttention
from seqattn.modules.positional import sinusoidal_encoding
from seqattn.search import beam_search, greedy_search

from helpers import LONG, SHORT, assert_beam_of_one_is_greedy, assert_overfits, assert_padding_invariant, random_sources

PAD, BOS, EOS, VOCAB = 0, 1, 2, 30
D_MODEL, HEADS = 16, 2
MAX_LEN = {"max_len_a": 1.0, "max_len_b": 3}


def tiny(seed: int = 0, vocab: tuple[int, int] = (VOCAB, VOCAB), **overrides) -> TransformerSeq2Seq:
    torch.manual_seed(seed)
    options = dict(
        arch="transformer", emb_dim=D_MODEL, hidden_dim=D_MODEL, heads=HEADS, ffn_dim=32,
        encoder_layers=2, decoder_layers=2, dropout=0.0, attention_dropout=0.0,
    )
    return build_model(ModelConfig(**{**options, **overrides}), *vocab, PAD, BOS, EOS)


def sharp(model: TransformerSeq2Seq) -> TransformerSeq2Seq:
    """Eval mode with peaked, EOS-prone output distributions: searches that end, get cut and disagree.
    PAD and BOS are never emitted, as by a trained model (`score` skips PAD targets)."""
    with torch.no_grad():
        model.decoder.output.weight.mul_(4.0)
        model.decoder.output.bias[EOS] += 1.0
        model.decoder.output.bias[[PAD, BOS]] = -1e4
    return model.eval()


def identity_attention(d_model: int, heads: int, alpha_head: int) -> MultiHeadAttention:
    att = MultiHeadAttention(d_model, heads, alpha_head=alpha_head)
    with torch.no_grad():
        for linear in (att.W_Q, att.W_K, att.W_V, att.W_O):
            linear.weight.copy_(torch.eye(d_model))
            linear.bias.zero_()
    return att


def test_multihead_attention_hand_computed() -> None:
    """W^Q = W^K = W^V = W^O = I, h = 2, d_k = 2: head i is softmax(q_i k_i^T / sqrt(2)) v_i on dims 2i, 2i+1."""
    q = torch.tensor([[1.0, 0.0, 0.0, 2.0]])  # [B=1, d_model=4]
    memory = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.0, 2.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0]]])  # [1, S=3, 4]
    mask = torch.tensor([[True, True, False]])
    alpha_0 = torch.tensor([1.0 / math.sqrt(2), 0.0]).softmax(0)  # q_0 = (1, 0); k_0 = (1, 1), (0, 2)
    alpha_1 = torch.tensor([0.0, 2.0 / math.sqrt(2)]).softmax(0)  # q_1 = (0, 2); k_1 = (0, 0), (1, 1)
    context = torch.cat([alpha_0 @ memory[0, :2, :2], alpha_1 @ memory[0, :2, 2:]])
    for alpha_head, alpha in ((0, alpha_0), (1, alpha_1), (-1, (alpha_0 + alpha_1) / 2)):
        att = identity_attention(4, 2, alpha_head)
        keys, values = att.precompute(memory, memory)
        assert keys.shape == (1, 2, 3, 2)  # [B, h, S, d_k]
        got_context, got_alpha = att(q, keys, values, mask)
        torch.testing.assert_close(got_alpha[0], torch.cat([alpha, torch.zeros(1)]))
        torch.testing.assert_close(got_context[0], context)
        fused_context, no_alpha = att(q, keys, values, mask, need_weights=False)
        assert no_alpha is None
        torch.testing.assert_close(fused_context, got_context)


def test_fused_path_equals_explicit_weights() -> None:
    torch.manual_seed(0)
    att = MultiHeadAttention(D_MODEL, HEADS).eval()
    query, memory = torch.randn(3, 5, D_MODEL), torch.randn(3, 4, D_MODEL)
    mask = torch.rand(3, 5, 4) > 0.5
    mask[..., 0] = True  # every query sees something
    keys, values = att.precompute(memory, memory)
    explicit, alpha = att(query, keys, values, mask)
    fused, _ = att(query, keys, values, mask, need_weights=False)
    torch.testing.assert_close(fused, explicit, atol=1e-6, rtol=1e-5)
    assert alpha.masked_select(~mask).abs().max() == 0
    # one query at a time gives the rows of many
    one, one_alpha = att(query[:, 2], keys, values, mask[:, 2])
    torch.testing.assert_close(one, explicit[:, 2])
    torch.testing.assert_close(one_alpha, alpha[:, 2])
    # a single query without weights (a search step) takes the matmuls, not the fused kernel: same rows
    one_step, no_weights = att(query[:, 2:3], keys, values, mask[:, 2:3], need_weights=False)
    assert no_weights is None
    torch.testing.assert_close(one_step, explicit[:, 2:3])
    # and the model's teacher forcing gives the same logits without the explicit weights
    model = tiny().eval()
    batch = collate([[5, 6, 7], [8, 9]], [[4, 5, 6], [7]], [0, 1], PAD, BOS, EOS)
    logits, alpha, _ = model(batch.src, batch.src_mask, batch.tgt_in)
    fused_logits, no_alpha, _ = model(batch.src, batch.src_mask, batch.tgt_in, need_alpha=False)
    assert no_alpha is None
    torch.testing.assert_close(fused_logits, logits, atol=1e-5, rtol=1e-5)


def test_search_step_attends_in_float32_under_autocast() -> None:
    """Under bf16 autocast a single query (a search step) takes eq. 1 in float32 over the bf16 projections."""
    torch.manual_seed(0)
    att = MultiHeadAttention(D_MODEL, HEADS).eval()
    query, memory = torch.randn(3, D_MODEL), torch.randn(3, 6, D_MODEL)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2, [True] * 2 + [False] * 4])
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        keys, values = att.precompute(memory, memory)
        queries = att.queries(query.unsqueeze(1))  # [B, h, 1, d_k]
        _, alpha = att(query, keys, values, mask)
    assert keys.dtype == queries.dtype == torch.bfloat16 and alpha.dtype == torch.float32
    e = queries.float() @ keys.float().transpose(-2, -1) / math.sqrt(D_MODEL // HEADS)  # [B, h, 1, S]
    expected = e.masked_fill(~mask[:, None, None], float("-inf")).softmax(dim=-1).mean(dim=1)[:, 0]
    torch.testing.assert_close(alpha, expected, atol=1e-6, rtol=1e-5)


def test_sinusoidal_positions() -> None:
    d = 6
    pe = sinusoidal_encoding(torch.arange(5), d)
    for pos in range(5):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    model = tiny().eval()
    tokens = torch.tensor([[5, 6, 7]])
    expected = model.encoder.embed.tokens(tokens) * math.sqrt(D_MODEL) + sinusoidal_encoding(torch.arange(3), D_MODEL)
    torch.testing.assert_close(model.encoder.embed(tokens), expected)
    later = model.encoder.embed.tokens(tokens) * math.sqrt(D_MODEL) + sinusoidal_encoding(
        torch.arange(200, 203), D_MODEL)
    torch.testing.assert_close(model.encoder.embed(tokens, start=200), later)  # positions from `start` on


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_incremental_decoding_equals_full_recomputation(norm: str) -> None:
    model = tiny(norm=norm, attention_layer=0, attention_head=1).eval()
    batch = collate([[5, 6, 7, 8], [9, 10]], [[4, 5, 6, 7, 8], [11, 12]], [0, 1], PAD, BOS, EOS)
    logits, alpha, _ = model(batch.src, batch.src_mask, batch.tgt_in)  # one pass, causal mask
    state = model.encode(batch.src, batch.src_mask)
    for t in range(batch.tgt_in.size(1)):
        log_probs, step_alpha, state = model.step(batch.tgt_in[:, t], state)
        assert log_probs.dtype == torch.float32
        torch.testing.assert_close(log_probs, logits[:, t].log_softmax(-1), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(step_alpha, alpha[:, t], atol=1e-6, rtol=1e-5)
        for layer in state["layers"]:  # the cache grows by one position, batch-first
            assert layer["self_k"].shape == layer["self_v"].shape == (2, HEADS, t + 1, D_MODEL // HEADS)
        map_state(lambda x: x.shape[0] == 2 or pytest.fail(f"state tensor {tuple(x.shape)} not batch-first"), state)


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_beam_hypotheses_score_as_teacher_forced(norm: str) -> None:
    """Every hypothesis's log_prob and alpha, built step by step over a cache reordered with the beam,
    equal a teacher-forced pass over its tokens."""
    model = sharp(tiny(seed=3, norm=norm))
    lengths = [5, 3, 7]
    src, src_mask = random_sources(lengths, VOCAB, PAD, EOS, seed=3)
    beams = beam_search(model, src, src_mask, beam_size=3, nbest=3, length_penalty="none", **MAX_LEN)
    assert any(h.finished for hyps in beams for h in hyps) and any(not h.finished for hyps in beams for h in hyps)
    for i, (n, hyps) in enumerate(zip(lengths, beams)):
        assert len({tuple(h.tokens) for h in hyps}) == 3
        for h in hyps:
            tgt_out = torch.tensor([h.tokens + [EOS] * h.finished])
            tgt_in = torch.cat([torch.tensor([[BOS]]), tgt_out[:, :-1]], dim=1)
            one_src, one_mask = src[i : i + 1, :n], src_mask[i : i + 1, :n]
            assert h.log_prob == pytest.approx(model.score(one_src, one_mask, tgt_in, tgt_out).item(), abs=1e-4)
            torch.testing.assert_close(h.alpha, model(one_src, one_mask, tgt_in).alpha[0], atol=1e-5, rtol=1e-4)


def test_batched_beam_equals_one_at_a_time_with_one_memory_row_per_sentence() -> None:
    """Beam search over a batch whose sentences end at different steps (the encoder memory, one row per
    sentence, pruned as they leave) gives each sentence the hypotheses it gets alone; the first step
    reads one row a sentence, every later step K hypotheses against one row of keys and values per sentence."""
    model = sharp(tiny(seed=3))
    lengths = [5, 3, 7, 1]
    src, src_mask = random_sources(lengths, VOCAB, PAD, EOS, seed=3)
    rows_seen: list[tuple[int, int]] = []
    step = model.step

    def spy(y_prev: Tensor, state):
        rows_seen.append((y_prev.size(0), state["layers"][0]["memory"]["k"].size(0)))
        return step(y_prev, state)

    model.step = spy
    batched = beam_search(model, src, src_mask, beam_size=3, nbest=3, **MAX_LEN)
    assert rows_seen[0] == (len(lengths), len(lengths))
    assert all(hyps == 3 * memory for hyps, memory in rows_seen[1:])
    assert len({memory for _, memory in rows_seen}) > 1  # sentences left during the search
    for i, n in enumerate(lengths):
        [alone] = beam_search(model, src[i : i + 1, :n], src_mask[i : i + 1, :n], beam_size=3, nbest=3, **MAX_LEN)
        assert [h.tokens for h in batched[i]] == [h.tokens for h in alone]
        assert [h.score for h in batched[i]] == pytest.approx([h.score for h in alone], abs=1e-5)
        for b, a in zip(batched[i], alone):
            torch.testing.assert_close(b.alpha, a.alpha, atol=1e-5, rtol=1e-4)


def test_beam_of_one_is_greedy() -> None:
    model = sharp(tiny(seed=4))
    src, src_mask = random_sources([4, 7, 2, 5, 8, 6], VOCAB, PAD, EOS, seed=4)
    assert_beam_of_one_is_greedy(model, src, src_mask, both_endings=False)


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_padding_does_not_change_a_sentence(norm: str) -> None:
    model = tiny(norm=norm).eval()
    assert_padding_invariant(model)
    alone = collate([SHORT], [[4, 5]], [0], PAD, BOS, EOS)
    batched = collate([SHORT, LONG], [[4, 5], [6, 7, 8, 9]], [0, 1], PAD, BOS, EOS)
    [g_alone] = greedy_search(model, alone.src, alone.src_mask, **MAX_LEN)
    g_batch = greedy_search(model, batched.src, batched.src_mask, **MAX_LEN)[0]
    assert g_batch.tokens == g_alone.tokens and g_batch.log_prob == pytest.approx(g_alone.log_prob, abs=1e-5)



def test_tied_embeddings_share_one_parameter() -> None:
    tied, untied = tiny(tie_embeddings=True), tiny()
    weight = tied.decoder.output.weight
    assert tied.encoder.embed.tokens.weight is weight and tied.decoder.embed.tokens.weight is weight
    n_tied = sum(p.numel() for p in tied.parameters())
    assert sum(p.numel() for p in untied.parameters()) - n_tied == 2 * VOCAB * D_MODEL
    assert untied.decoder.output.weight is not untied.decoder.embed.tokens.weight
    # one gradient from all three uses
    batch = collate([[5, 6, 7]], [[4, 5]], [0], PAD, BOS, EOS)
    tied(batch.src, batch.src_mask, batch.tgt_in)[0].sum().backward()
    assert weight.grad is not None and weight.grad[5].abs().sum() > 0  # a source-only token


def test_alpha_picks_the_configured_layer_and_head() -> None:
    batch = collate([[5, 6, 7, 8], [9, 10]], [[4, 5, 6], [11]], [0, 1], PAD, BOS, EOS)

    def alpha_of(model: TransformerSeq2Seq) -> Tensor:
        return model.eval()(batch.src, batch.src_mask, batch.tgt_in)[1]  # [B, T, S]

    average, head_0, head_1 = (alpha_of(tiny(attention_head=h)) for h in (-1, 0, 1))
    torch.testing.assert_close(average, (head_0 + head_1) / 2)
    assert not torch.allclose(head_0, head_1, atol=1e-3)
    for alpha in (average, head_0, head_1):
        torch.testing.assert_close(alpha.sum(-1), torch.ones(2, 4))
        assert alpha[1, :, 3:].abs().max() == 0  # padding of the short source
    torch.testing.assert_close(alpha_of(tiny(attention_layer=1)), average)  # -1 is the last layer
    first = tiny(attention_layer=0)
    first_alpha = alpha_of(first)
    assert not torch.allclose(first_alpha, average, atol=1e-3)
    with torch.no_grad():  # layer 0's weights do not depend on layer 1
        for p in first.decoder.layers[1].parameters():
            p.add_(1.0)
    torch.testing.assert_close(alpha_of(first), first_alpha)


def test_overfits_a_tiny_batch_and_greedy_reproduces_it() -> None:
    assert_overfits(tiny(dropout=0.1, attention_dropout=0.1, ffn_dim=64))



@pytest.mark.parametrize(
    "overrides, vocab, message",
    [
        ({"emb_dim": 8}, (VOCAB, VOCAB), "model.emb_dim / model.hidden_dim"),
        ({"heads": 3}, (VOCAB, VOCAB), "model.heads"),
        ({"norm": "middle"}, (VOCAB, VOCAB), "model.norm"),
        ({"attention_layer": 2}, (VOCAB, VOCAB), "model.attention_layer"),
        ({"attention_head": 2}, (VOCAB, VOCAB), "model.attention_head"),
        ({"tie_embeddings": True}, (VOCAB, VOCAB + 1), "model.tie_embeddings"),
    ],
)
def test_bad_config_is_named(overrides: dict, vocab: tuple[int, int], message: str) -> None:
    with pytest.raises(SeqattnError, match=f"^{message}: "):
        tiny(vocab=vocab, **overrides)


def test_fused_self_attention_projections_decode_as_the_three() -> None:
    """fuse_for_decoding stacks W^Q, W^K, W^V of every self-attention (encoder and decoder) into one
    layer: the same encoder memory, step log-probabilities and beam search as before, in float32 and
    in int8, where the fused layer quantises its input once."""
    from seqattn.precision import quantize_int8

    model = sharp(tiny(seed=5))
    src, src_mask = random_sources([5, 3, 7, 1], VOCAB, PAD, EOS, seed=5)
    fused = copy.deepcopy(model)
    fused.fuse_for_decoding()
    attns = [layer.self_attn for layer in (*fused.encoder.layers, *fused.decoder.layers)]
    assert all(a.W_QKV is not None for a in attns)
    assert all(layer.cross_attn.W_QKV is None for layer in fused.decoder.layers)  # two inputs: nothing to fuse
    with torch.no_grad():
        h = torch.randn(2, 4, model.decoder.output.in_features)
        for a, b in zip(attns, (layer.self_attn for layer in (*model.encoder.layers, *model.decoder.layers))):
            for x, y in zip(a.project(h), b.project(h)):
                torch.testing.assert_close(x, y, atol=1e-6, rtol=1e-6)
    for ours, theirs in ((fused, model), (quantize_int8(fused), quantize_int8(model))):
        a = beam_search(ours, src, src_mask, beam_size=3, nbest=3, **MAX_LEN)
        b = beam_search(theirs, src, src_mask, beam_size=3, nbest=3, **MAX_LEN)
        assert [[h.tokens for h in n] for n in a] == [[h.tokens for h in n] for n in b]
        assert [h.score for n in a for h in n] == pytest.approx([h.score for n in b for h in n], abs=1e-4)
