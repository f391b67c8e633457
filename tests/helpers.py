"""Checks every model family's tests share: padding invariance, overfitting a tiny batch, random sources;
and the small Multi30k corpus the command-line tests train on."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from seqattn.data import Batch, collate
from seqattn.models import Seq2Seq
from seqattn.search import beam_search, greedy_search

SHORT, LONG = [5, 6, 7], [8, 9, 10, 11, 12, 13]


def random_sources(lengths: list[int], vocab: int, pad: int, eos: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Random sources of the given lengths (EOS last, ids above EOS), right-padded -> src, src_mask [B, S]."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), pad)
    for i, n in enumerate(lengths):
        src[i, : n - 1] = torch.randint(eos + 1, vocab, (n - 1,), generator=gen)
        src[i, n - 1] = eos
    return src, src.ne(pad)


def assert_padding_invariant(model: Seq2Seq) -> None:
    """A sentence gets the same logits and attention alone and beside a longer, padded one."""
    ids = model.pad_id, model.bos_id, model.eos_id
    alone = collate([SHORT], [[4, 5]], [0], *ids)
    batched = collate([SHORT, LONG], [[4, 5], [6, 7, 8, 9]], [0, 1], *ids)
    logits_alone, alpha_alone, _ = model(alone.src, alone.src_mask, alone.tgt_in)
    logits_batch, alpha_batch, _ = model(batched.src, batched.src_mask, batched.tgt_in)
    torch.testing.assert_close(logits_batch[0, :3], logits_alone[0], atol=1e-5, rtol=1e-5)
    if alpha_alone is None:
        assert alpha_batch is None
        return
    assert alpha_batch[0, :, len(SHORT) + 1 :].abs().max() == 0  # no weight on padding
    torch.testing.assert_close(alpha_batch[0, :3, : len(SHORT) + 1], alpha_alone[0], atol=1e-6, rtol=1e-5)


def assert_overfits(model: Seq2Seq, steps: int = 150) -> Batch:
    """150 Adam steps on four pairs drive the loss near 0, and greedy search then reproduces them
    -> the batch of the four pairs."""
    src = [[5, 6, 7, 8], [9, 10, 11], [12, 13, 14, 15, 16], [17, 18]]
    tgt = [[19, 20, 21], [22, 23, 4, 5], [6, 7], [8, 9, 10, 11, 12]]
    batch = collate(src, tgt, list(range(4)), model.pad_id, model.bos_id, model.eos_id)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        logits = model(batch.src, batch.src_mask, batch.tgt_in, need_alpha=False).logits
        loss = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=model.pad_id
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    hyps = greedy_search(model.eval(), batch.src, batch.src_mask, max_len_a=2.0, max_len_b=5)
    assert [h.tokens for h in hyps] == tgt and all(h.finished for h in hyps)
    return batch


def teacher_forced_log_prob(model: Seq2Seq, src: Tensor, src_mask: Tensor, hyp) -> float:
    """log p(hyp | src) summed over its tokens (and EOS when finished) from one teacher-forced pass
    of the model: independent of the search's own bookkeeping. src, src_mask: [1, S]."""
    targets = hyp.tokens + [model.eos_id] * hyp.finished
    tgt_in = torch.tensor([[model.bos_id] + targets[:-1]])
    logits = model(src, src_mask, tgt_in, need_alpha=False).logits  # [1, T, V]
    return logits.log_softmax(-1)[0, torch.arange(len(targets)), torch.tensor(targets)].sum().item()


def assert_beam_of_one_is_greedy(model: Seq2Seq, src: Tensor, src_mask: Tensor, both_endings: bool = True) -> None:
    """Beam search of width 1 (no length penalty) returns greedy search's hypotheses; with
    `both_endings` the batch must hold sentences ending with EOS and sentences cut at max length."""
    limits = {"max_len_a": 1.0, "max_len_b": 3}
    greedy = greedy_search(model, src, src_mask, **limits)
    beam = beam_search(model, src, src_mask, beam_size=1, length_penalty="none", **limits)
    if both_endings:
        assert any(h.finished for h in greedy) and any(not h.finished for h in greedy)
    for i, (g, [b]) in enumerate(zip(greedy, beam)):
        assert g.tokens == b.tokens and g.finished == b.finished and g.score == g.log_prob
        assert g.log_prob == pytest.approx(teacher_forced_log_prob(model, src[i : i + 1], src_mask[i : i + 1], g), abs=1e-5)
        assert b.log_prob == pytest.approx(g.log_prob, abs=1e-5)
        if g.alpha is not None:
            torch.testing.assert_close(b.alpha, g.alpha)


REPO = Path(__file__).resolve().parent.parent


def train_tiny(recipe: str, corpus: Path, out: Path, *overrides: str) -> Path:
    """`seqattn train` of recipes/`recipe` for 4 steps on a small corpus folder, with a 250-piece
    vocabulary -> the run's best.pt."""
    from typer.testing import CliRunner

    from cli import app

    args = ["train", str(REPO / "recipes" / recipe), f"out_dir={out}", f"data.root={corpus}", "data.corpus=.",
            "subword.vocab_size=250", "train.max_steps=4", "train.valid_every=4", "train.batch_tokens=2000",
            "train.progress=false", "train.max_minutes=0", *overrides]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out / "best.pt"


def write_small_corpus(folder: Path, multi30k: Path) -> Path:
    """The first lines of Multi30k En-De as a corpus folder: train 400, val 30, test 20 pairs."""
    for split, n in (("train", 400), ("val", 30), ("test_2016_flickr", 20)):
        for lang in ("en", "de"):
            lines = (multi30k / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()[:n]
            (folder / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
