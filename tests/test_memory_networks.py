"""MemN2N (Sukhbaatar et al. 2015) and KV-MemNN (Miller et al. 2016): encodings, attention over real
slots, search, batched answers equal to one question at a time, overfitting real bAbI stories, linear
start, random noise, key hashing, last-word values."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqattn.api import Model
from seqattn.config import Config, ModelConfig
from seqattn.data.babi import BabiExample, build_babi_vocab, collate_babi, read_task
from seqattn.data.vocab import WordVocab
from seqattn.errors import SeqattnError
from seqattn.models.kvmemnn import build_kvmemnn, last_words
from seqattn.models.memn2n import MemN2N, build_memn2n
from seqattn.modules.memory import BagOfWords, ages, masked_attention, noisy_ages, position_encoding
from seqattn.search import beam_search, greedy_search
from seqattn.tasks.qa import QATask

PAD, BOS, EOS = 0, 2, 3


@pytest.fixture(scope="module")
def stories(babi: Path) -> list[BabiExample]:
    """6 task-1 questions and 6 task-8 ones (3 with two-word answers), memories cut to the last 8."""
    task1 = read_task(babi, 1, "train", memory_size=8)[:6]
    task8 = read_task(babi, 8, "train", memory_size=8)[:200]
    multi = [e for e in task8 if len(e.answer) > 1][:3]
    single = [e for e in task8 if len(e.answer) == 1][:3]
    return task1 + multi + single


def memn2n(vocab: int, **options) -> MemN2N:
    cfg = ModelConfig(emb_dim=24, hops=3, linear_start=False, random_noise=0.0, memory_slots=16)
    for key, value in options.items():
        setattr(cfg, key, value)
    return build_memn2n(cfg, vocab, vocab, PAD, BOS, EOS)


def kvmemnn(vocab: WordVocab, **options):
    cfg = ModelConfig(emb_dim=24, hops=2, memory_slots=16, linear_start=False)
    for key, value in options.items():
        setattr(cfg, key, value)
    return build_kvmemnn(cfg, len(vocab), len(vocab), PAD, BOS, EOS, words=vocab.itos)


MODELS = {
    "memn2n-adjacent": lambda v: memn2n(len(v)),
    "memn2n-layerwise": lambda v: memn2n(len(v), tying="layerwise", position_encoding=False),
    "kvmemnn": lambda v: kvmemnn(v),
    "kvmemnn-last-word-hashed": lambda v: kvmemnn(v, values="last-word", key_hashing=True),
    "memn2n-capacity": lambda v: memn2n(len(v), memory_capacity=12),  # 4-8 empty slots beside 8 memories at most
    "kvmemnn-capacity": lambda v: kvmemnn(v, memory_capacity=12),
}


def test_position_encoding_by_hand():
    # J = 3, d = 4: l_kj = (1 - j/3) - (k/4)(1 - 2j/3)
    expected = torch.tensor([
        [7 / 12, 6 / 12, 5 / 12, 4 / 12],  # j = 1: 2/3 - k/12
        [5 / 12, 6 / 12, 7 / 12, 8 / 12],  # j = 2: 1/3 + k/12
        [1 / 4, 2 / 4, 3 / 4, 4 / 4],  # j = 3: k/4
        [0, 0, 0, 0],  # padding
    ])
    torch.testing.assert_close(position_encoding(torch.tensor([9, 5, 7, PAD]), PAD, 4), expected)


def test_temporal_encoding_indexes_by_age():
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    assert ages(mask).tolist() == [[2, 1, 0, 0], [0, 0, 0, 0]]
    bow = BagOfWords(10, 3, PAD, position=False, temporal_slots=4)
    with torch.no_grad():
        bow.embed.weight.zero_()
        bow.temporal.weight.copy_(torch.arange(12.0).view(4, 3))
    out = bow(torch.full((2, 4, 2), 5), ages(mask))  # [B, M, d]
    assert out[0, 2].tolist() == [0.0, 1.0, 2.0]  # the most recent memory: row 0
    assert out[0, 0].tolist() == [6.0, 7.0, 8.0]  # the oldest of three: row 2


@pytest.mark.parametrize("name", MODELS)
def test_hop_attention_is_a_distribution_over_real_slots(name: str, stories: list[BabiExample]):
    vocab = build_babi_vocab(stories)
    model = MODELS[name](vocab).eval()
    batch = collate_babi(stories, list(range(len(stories))), vocab)
    p = model.hop_attention(batch.src, batch.src_mask)  # [B, K, M]
    assert p.shape == (len(stories), 2 if "kv" in name else 3, batch.src_mask.size(1))
    assert not batch.src_mask.all()  # some padding slots to check
    pad = ~batch.src_mask.unsqueeze(1).expand_as(p)
    assert p[pad].eq(0).all()
    if "capacity" in name:  # the empty slots take a share of every softmax
        assert p.sum(-1).lt(1).all() and p.sum(-1).gt(0).all()
    else:
        torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:2]))


def test_empty_slots_of_a_memory_capacity_by_hand():
    """p_i = exp(s_i) / (sum_j exp(s_j) + S - n): scores (ln 3, 0) of n = 2 memories in S = 4 slots
    give (3, 1) / 6; a story filling the memory is a plain softmax; padding stays 0."""
    scores = torch.tensor([[3.0, 1.0, 7.0], [3.0, 1.0, 1.0]]).log()
    mask = torch.tensor([[True, True, False], [True, True, True]])
    p = masked_attention(scores, mask, capacity=4)
    torch.testing.assert_close(p, torch.tensor([[3 / 6, 1 / 6, 0.0], [3 / 6, 1 / 6, 1 / 6]]))
    torch.testing.assert_close(masked_attention(scores, mask, capacity=3)[1], torch.tensor([0.6, 0.2, 0.2]))
    torch.testing.assert_close(masked_attention(scores, mask)[0], torch.tensor([0.75, 0.25, 0.0]))
    assert masked_attention(scores, mask, softmax=False, capacity=4).equal(scores.masked_fill(~mask, 0.0))


@pytest.mark.parametrize("name", MODELS)
def test_batched_equals_alone_and_beam1_equals_greedy(name: str, stories: list[BabiExample]):
    vocab = build_babi_vocab(stories)
    torch.manual_seed(0)
    model = MODELS[name](vocab).eval()
    short = min(range(len(stories)), key=lambda i: len(stories[i].memory))
    long = max(range(len(stories)), key=lambda i: len(stories[i].memory))
    alone, both = collate_babi(stories, [short], vocab), collate_babi(stories, [short, long], vocab)
    assert both.src.shape[1:] != alone.src.shape[1:] and both.tgt_in.size(1) >= alone.tgt_in.size(1)
    out_alone, out_both = model(alone.src, alone.src_mask, alone.tgt_in), model(both.src, both.src_mask, both.tgt_in)
    T, M = alone.tgt_in.size(1), alone.src_mask.size(1)
    torch.testing.assert_close(out_both.logits[0, :T], out_alone.logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_both.alpha[0, :T, :M], out_alone.alpha[0], atol=1e-6, rtol=1e-5)
    assert out_both.alpha[0, :, M:].eq(0).all()
    assert model(both.src, both.src_mask, both.tgt_in, need_alpha=False).alpha is None

    batch = collate_babi(stories, list(range(len(stories))), vocab)
    greedy = greedy_search(model, batch.src, batch.src_mask, max_len_a=0, max_len_b=4)
    beam = beam_search(model, batch.src, batch.src_mask, beam_size=1, length_penalty="none", max_len_a=0, max_len_b=4)
    assert [h.tokens for h in greedy] == [b[0].tokens for b in beam]
    for g, b in zip(greedy, beam):
        assert g.log_prob == pytest.approx(b[0].log_prob, abs=1e-5)


def overfit(model, stories: list[BabiExample], vocab: WordVocab, steps: int) -> None:
    batch = collate_babi(stories, list(range(len(stories))), vocab)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        out = model(batch.src, batch.src_mask, batch.tgt_in, need_alpha=False)
        (model.nll(out.logits, batch.tgt_out) / batch.ntokens).backward()
        optimiser.step()
    model.eval()
    found = greedy_search(model, batch.src, batch.src_mask, max_len_a=0, max_len_b=5)
    assert [vocab.pieces(h.tokens) for h in found] == [e.answer for e in stories]
    assert all(h.finished for h in found)  # every answer, two-word ones included, ends with EOS


@pytest.mark.parametrize("name", MODELS)
def test_overfits_real_stories_and_search_reproduces_answers(name: str, stories: list[BabiExample]):
    assert any(len(e.answer) == 2 for e in stories)
    vocab = build_babi_vocab(stories)
    torch.manual_seed(0)
    overfit(MODELS[name](vocab), stories, vocab, steps=200)


SEARCHES = {"greedy": {"beam_size": 1, "nbest": 1}, "beam": {"beam_size": 3, "nbest": 3, "length_penalty": "gnmt"}}


def answerer(name: str, stories: list[BabiExample]) -> Model:
    """`seqattn answer`'s model (seqattn.api.Model) of MODELS[name], overfit to `stories` (seed 0)."""
    vocab = build_babi_vocab(stories)
    torch.manual_seed(0)
    network = MODELS[name](vocab)
    overfit(network, stories, vocab, steps=200)
    cfg = Config(model=ModelConfig(arch=name.split("-")[0]))  # memn2n or kvmemnn: the QA task
    return Model(network, cfg, QATask(cfg, vocab), torch.device("cpu"), None, name)


@pytest.mark.parametrize("name", MODELS)
def test_answers_of_a_batch_equal_one_question_at_a_time(
    name: str, stories: list[BabiExample], monkeypatch: pytest.MonkeyPatch,
):
    """The answers of `seqattn answer` (seqattn.api.Model.answer: Predictor batches by story length, the
    shared search) for questions whose stories hold 2 to 8 memories, one padded batch, equal each
    question's alone, greedy and beam: n-best texts (two-word answers included), scores and last-hop
    attention. With the padding counted as memories (an all-True mask) the batch's scores differ."""
    model = answerer(name, stories)
    assert len({len(ex.memory) for ex in stories}) >= 3
    for search in SEARCHES.values():
        options = {**search, "max_len_a": 0, "max_len_b": 4}
        batched = model.answer(stories, **options)
        alone = [model.answer([ex], **options)[0] for ex in stories]
        assert [[p.text for p in nbest] for nbest in batched] == [[p.text for p in nbest] for nbest in alone]
        assert [nbest[0].text for nbest in batched] == [",".join(ex.answer) for ex in stories]
        assert any("," in nbest[0].text for nbest in batched)
        for b_nbest, a_nbest, ex in zip(batched, alone, stories):
            assert len(b_nbest) == len(a_nbest) == search["nbest"]
            for b, a in zip(b_nbest, a_nbest):
                assert b.score == pytest.approx(a.score, rel=1e-5, abs=1e-5)
                assert b.alpha.shape == (len(b.target), len(ex.memory))
                torch.testing.assert_close(b.alpha, a.alpha, atol=1e-5, rtol=1e-5)

    collate = model.task.collate_inputs

    def padding_as_memories(*args) -> tuple[torch.Tensor, torch.Tensor]:
        src, src_mask = collate(*args)
        return src, src_mask.fill_(True)

    monkeypatch.setattr(model.task, "collate_inputs", padding_as_memories)
    leaky = model.answer(stories, **options)
    assert max(abs(b[0].score - a[0].score) for b, a in zip(leaky, alone)) > 1e-3


LINEAR_START = {"memn2n": lambda vocab, **options: memn2n(len(vocab), **options), "kvmemnn": kvmemnn}


@pytest.mark.parametrize("name", sorted(LINEAR_START))
def test_linear_start_switch_and_state_dict(name: str, stories: list[BabiExample]):
    vocab = build_babi_vocab(stories)
    build = LINEAR_START[name]
    model = build(vocab, linear_start=True).eval()
    batch = collate_babi(stories, list(range(len(stories))), vocab)
    p = model.hop_attention(batch.src, batch.src_mask)
    assert not torch.allclose(p.sum(-1), torch.ones(p.shape[:2]))  # no softmax: raw scores
    assert p[~batch.src_mask.unsqueeze(1).expand_as(p)].eq(0).all()
    assert not model.after_validation({"valid_loss": 2.0}, 1.0)
    assert not model.after_validation({"valid_loss": 1.5}, 1.0)
    assert bool(model.linear) and model.best_valid_loss.item() == 1.5
    resumed = build(vocab, linear_start=True)
    resumed.load_state_dict(model.state_dict())
    assert bool(resumed.linear) and resumed.best_valid_loss.item() == 1.5
    assert model.after_validation({"valid_loss": 1.6}, 1.0)  # stopped decreasing: the softmax comes back,
    assert not bool(model.linear)  # and training recommences (the trainer restarts its schedule)
    assert not model.after_validation({"valid_loss": 9.0}, 1.0)  # and stays
    assert not bool(model.linear)
    torch.testing.assert_close(model.hop_attention(batch.src, batch.src_mask).sum(-1), torch.ones(p.shape[:2]))
    resumed.load_state_dict(model.state_dict())
    assert not bool(resumed.linear)


def test_a_kvmemnn_checkpoint_from_before_linear_start_loads_without_it(stories: list[BabiExample]):
    """Its state has no `linear` buffer and its config the default linear_start=True: it was trained
    with the softmax, and answers with it."""
    vocab = build_babi_vocab(stories)
    old = kvmemnn(vocab).eval()
    state = {k: v for k, v in old.state_dict().items() if k not in ("linear", "best_valid_loss")}
    loaded = kvmemnn(vocab, linear_start=True).eval()
    loaded.load_state_dict(state)
    batch = collate_babi(stories, list(range(len(stories))), vocab)
    assert not bool(loaded.linear)
    torch.testing.assert_close(loaded.hop_attention(batch.src, batch.src_mask), old.hop_attention(batch.src, batch.src_mask))


def test_linear_start_for_a_number_of_epochs(stories: list[BabiExample]):
    """model.linear_start_epochs=20: the softmax comes back at the first validation after 20 epochs,
    whatever the valid loss does before."""
    model = memn2n(len(build_babi_vocab(stories)), linear_start=True, linear_start_epochs=20)
    assert not model.after_validation({"valid_loss": 1.0}, 0.5)
    assert not model.after_validation({"valid_loss": 3.0}, 19.99) and bool(model.linear)
    assert model.after_validation({"valid_loss": 3.0}, 20.0) and not bool(model.linear)
    with pytest.raises(SeqattnError, match="model.linear_start_epochs"):
        memn2n(10, linear_start_epochs=-1)


def test_noisy_ages_leave_one_uniform_gap_among_ten_memories():
    """10 memories and ceil(0.1 * 10) = 1 empty one: the real ages are 0..10 less one place, drawn
    uniformly, oldest first; 3 memories get 1 empty one among 4 places; padding stays 0."""
    torch.manual_seed(0)
    mask = torch.arange(12) < torch.tensor([[10], [3]])  # [2, 12]
    gaps = torch.zeros(11)
    for _ in range(2200):
        age = noisy_ages(mask, 0.1)
        assert age[~mask].eq(0).all() and age[1, :3].max() <= 3
        real = age[0, :10]
        assert real.diff().lt(0).all() and 0 <= real.min() and real.max() <= 10
        gaps[sorted(set(range(11)) - set(real.tolist()))] += 1
    assert gaps.sum() == 2200 and gaps.min() > 150 and gaps.max() < 250  # 200 each when uniform
    assert noisy_ages(mask, 0.0).equal(ages(mask))  # no empty memories: the plain ages


def test_random_noise_changes_only_training_forward(stories: list[BabiExample]):
    vocab = build_babi_vocab(stories)
    torch.manual_seed(0)
    model = memn2n(len(vocab), random_noise=0.5)
    batch = collate_babi(stories, list(range(len(stories))), vocab)
    run = lambda: model(batch.src, batch.src_mask, batch.tgt_in).logits  # noqa: E731
    model.eval()
    torch.testing.assert_close(run(), run())
    clean = run()
    model.train()  # no dropout in the model: only the noise differs
    torch.manual_seed(1)
    noisy = run()
    torch.manual_seed(1)
    torch.testing.assert_close(run(), noisy)  # draws from the global RNG
    assert not torch.allclose(noisy, clean)
    model.random_noise = 0.0
    torch.testing.assert_close(run(), clean)  # training mode without noise: the same as eval


def tiny_vocab() -> WordVocab:
    return WordVocab(["<pad>", "<unk>", "<s>", "</s>", "where", "is", "the", "mary", "john", "went", "to", "kitchen",
                      "garden", "apple"])


def test_key_hashing_masks_slots_without_a_question_word():
    vocab = tiny_vocab()
    ids = lambda text: [vocab.stoi[w] for w in text.split()]  # noqa: E731
    model = kvmemnn(vocab, key_hashing=True).eval()
    story = torch.zeros(2, 4, 4, dtype=torch.long)
    for i, text in enumerate(["john went to the kitchen", "mary went to the garden", "the apple", "john went to"]):
        story[0, i, : len(ids(text))] = torch.tensor(ids(text)[:4])
        story[1, i, : len(ids(text))] = torch.tensor(ids(text)[:4])
    question = torch.tensor([ids("where is the mary"), ids("where is the apple")])
    # row 0 shares "the" (a stopword) with every slot and "mary" with slot 1 only; row 1's last slot is padding
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    src = torch.cat([story, question.unsqueeze(1)], 1)  # [B, M+1, W]
    p = model.hop_attention(src, mask)
    assert p[0, :, [0, 2, 3]].eq(0).all() and p[0, :, 1].eq(1).all()  # only mary's slot
    assert p[1, :, [0, 1, 3]].eq(0).all() and p[1, :, 2].eq(1).all()  # only the apple's slot
    nothing = torch.tensor([ids("where is the") + [PAD]] * 2)  # no content word: all real slots kept
    p = model.hop_attention(torch.cat([story, nothing.unsqueeze(1)], 1), mask)
    assert p[0].gt(0).all() and p[1, :, :3].gt(0).all() and p[1, :, 3].eq(0).all()


def test_last_word_values():
    story = torch.tensor([[[5, 6, 7, 0], [8, 9, 10, 11], [0, 0, 0, 0]]])  # [1, 3, 4]
    assert last_words(story, PAD).squeeze(-1).tolist() == [[7, 11, 0]]
    # a last-word model reads its value from the last word only: changing an earlier word of the
    # attended slot leaves the answer vector unchanged when all attention is on that slot
    vocab = tiny_vocab()
    model = kvmemnn(vocab, values="last-word", hops=1, position_encoding=False, temporal_encoding=False).eval()
    question = torch.tensor([[4, 5, 7, 0]])
    mask = torch.tensor([[True, False, False]])
    src = torch.cat([story, question.unsqueeze(1)], 1)
    h, _ = model.hops(src, mask)
    with torch.no_grad():
        expected = model.R[0](model.A(question[0]) + model.A.embed.weight[7])
    torch.testing.assert_close(h[0], expected)


def test_unknown_options_name_the_key():
    with pytest.raises(SeqattnError, match=r"model.tying: unknown 'x'; choose adjacent or layerwise"):
        memn2n(20, tying="x")
    with pytest.raises(SeqattnError, match=r"model.values: unknown 'first-word'"):
        kvmemnn(tiny_vocab(), values="first-word")
    with pytest.raises(SeqattnError, match=r"model.key_hashing: needs the vocabulary's words"):
        build_kvmemnn(ModelConfig(key_hashing=True), 14, 14, PAD, BOS, EOS)
    for build in (lambda: memn2n(20, memory_capacity=-1), lambda: kvmemnn(tiny_vocab(), memory_capacity=-1)):
        with pytest.raises(SeqattnError, match=r"model.memory_capacity: 0 \(no empty slots\) or the memory's size, got -1"):
            build()


def test_modules_memory_loads_no_models_or_config():
    code = "import seqattn.modules.memory, json, sys; print(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(run.stdout)
    assert not [m for m in loaded if m.startswith(("seqattn.models", "seqattn.config", "seqattn.search"))]
