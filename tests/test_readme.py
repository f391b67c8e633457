"""The README's "Add your own model" example runs as written: registered from a script, it trains on
the shared trainer, and the shared search decodes it with its attention."""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from seqattn.config import load_config
from seqattn import registry
from seqattn.search import beam_search, greedy_search
from seqattn.training import Trainer

README = Path(__file__).resolve().parent.parent / "README.md"


def example(section: str) -> str:
    """The first ```python block after the heading `section` in the README."""
    text = README.read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", text[text.index(f"## {section}\n"):], re.S).group(1)


def test_add_your_own_model_example_trains_and_decodes(small_corpus: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(registry, "ARCHS", dict(registry.ARCHS))  # the example registers into a copy
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(example("Add your own model"), str(README), "exec"), namespace)
    assert "dot-gru" in registry.ARCHS
    cfg = load_config(None, [f"out_dir={tmp_path}", f"data.root={small_corpus}", "data.corpus=.", "model.arch=dot-gru",
                             "model.emb_dim=32", "subword.vocab_size=250", "train.max_steps=30", "train.valid_every=30",
                             "train.lr=0.01", "train.log_every=5", "train.progress=false", "search.beam_size=2"])
    trainer = Trainer(cfg, log=lambda *_: None)
    trainer.train()
    assert isinstance(trainer.model, namespace["DotGRU"])
    batch = trainer.valid_data.batch(list(range(4)), trainer.tgt_tok).to(trainer.device)
    model = trainer.model.eval()
    greedy = greedy_search(model, batch.src, batch.src_mask, max_len_a=1.0, max_len_b=3)
    [beam] = zip(*beam_search(model, batch.src, batch.src_mask, beam_size=1, length_penalty="none",
                              max_len_a=1.0, max_len_b=3))
    assert [g.tokens for g in greedy] == [b.tokens for b in beam]
    for hyp, n in zip(greedy, batch.src_mask.sum(-1).tolist()):
        assert hyp.alpha.shape == (len(hyp.tokens) + hyp.finished, n)
        torch.testing.assert_close(hyp.alpha.sum(-1).cpu(), torch.ones(hyp.alpha.size(0)))
    losses = [r["train_loss"] for r in map(json.loads, (tmp_path / "train.jsonl").read_text().splitlines()) if "train_loss" in r]
    assert trainer.progress.step == 30 and losses[-1] < 0.8 * losses[0]
