"""The captioning task end to end: feature cache, training through the shared trainer, resuming,
validation by BLEU or CIDEr, loading a checkpoint and captioning image files with the shared search."""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import torch

from seqattn.config import load_config
from seqattn.errors import SeqattnError
from seqattn.evaluation import caption_scores
from seqattn.evaluation.captions import cider
from seqattn.inference import Predictor
from seqattn.tasks.base import CAPTION_METRICS
from seqattn.tasks.captioning import CaptioningTask
from seqattn.training import Trainer
from seqattn.training.checkpoint import load_checkpoint, load_model


def caption_config(data: Path, out: Path, *overrides: str):
    """A tiny Show-Attend-Tell on a frozen, randomly initialised ResNet-18 at 64 pixels, 2x2 grid."""
    return load_config(None, [
        f"out_dir={out}", f"captions.root={data.parent}", f"captions.dataset={data.name}",
        "captions.splits={train: Flickr_8k.trainImages.txt, valid: Flickr_8k.devImages.txt}", "captions.min_count=3",
        "backbone.name=resnet18", "backbone.image_size=64", "backbone.grid=2",
        "model.arch=show-attend-tell", "model.emb_dim=16", "model.hidden_dim=24", "model.attention_dim=16",
        "model.dropout=0.0", "train.batch_tokens=200", "train.lr=0.003", "train.valid_every=4", "train.log_every=2",
        "train.progress=false", "train.schedule=constant", "search.beam_size=2", "search.max_len_a=0",
        "search.max_len_b=6", *overrides,
    ])


def quiet(*_: object) -> None:
    pass


def test_frozen_features_are_cached_once(tiny_flickr: Path, tmp_path: Path) -> None:
    messages: list[str] = []
    first = CaptioningTask.prepare(caption_config(tiny_flickr, tmp_path), log=messages.append)
    assert first.train_data.grids.shape == (12, 4, 512) and first.valid_data.grids.shape == (4, 4, 512)
    assert len(first.train_data) == 60  # 5 captions an image
    assert sum("running resnet18" in m for m in messages) == 2
    messages.clear()
    again = CaptioningTask.prepare(caption_config(tiny_flickr, tmp_path), log=messages.append)
    assert sum("from" in m and "annotation grids" in m for m in messages) == 2
    assert torch.equal(first.train_data.grids, again.train_data.grids)
    # another image size is another cache entry, never a stale read
    other = CaptioningTask.prepare(caption_config(tiny_flickr, tmp_path, "backbone.image_size=32"), log=quiet)
    assert len(list((tmp_path / "features").glob("train-*.pt"))) == 2 and other.train_data.grids.shape == (12, 4, 512)


def test_caption_search_needs_max_len_a_zero(tiny_flickr: Path, tmp_path: Path) -> None:
    with pytest.raises(SeqattnError, match="search.max_len_a"):
        CaptioningTask.prepare(caption_config(tiny_flickr, tmp_path, "search.max_len_a=1.5"), log=quiet)


@pytest.mark.parametrize("attend", ["soft", "hard"])
def test_resumed_caption_training_equals_uninterrupted(tiny_flickr: Path, tmp_path: Path, attend: str) -> None:
    """Hard attention draws samples and moves its baseline: both must resume exactly."""
    opts = (f"model.attend={attend}", "backbone.cache_dir=" + str(tmp_path / "cache"))
    whole = Trainer(caption_config(tiny_flickr, tmp_path / "whole", "train.max_steps=7", *opts), log=quiet)
    whole.train()
    first = Trainer(caption_config(tiny_flickr, tmp_path / "split", "train.max_steps=3", *opts), log=quiet)
    first.train()
    resumed = Trainer(caption_config(tiny_flickr, tmp_path / "split", "train.max_steps=7", *opts), resume=True,
                      log=quiet)
    assert resumed.progress.step == first.progress.step == 3  # from last.pt, not from scratch
    resumed.train()
    assert vars(resumed.progress) | {"elapsed": 0} == vars(whole.progress) | {"elapsed": 0}
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_hard_attention_baseline_moves_once_per_update_by_its_mean_reward(
    tiny_flickr: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """accumulate=2: both batches' losses see the baseline b the update started with; then b moves once,
    by the mean reward log p(y | s, a) of the update's sampled captions (all of them here)."""
    trainer = Trainer(caption_config(tiny_flickr, tmp_path, "model.attend=hard", "model.expected_context=0.0",
                                     "model.baseline_decay=0.5", "train.accumulate=2"), log=quiet)
    model, seen = trainer.model, []  # per loss: (b, rewards [B])
    loss = model.loss

    def recording_loss(out, tgt_out, label_smoothing, guide):
        token = out.logits.detach().float().log_softmax(-1).gather(-1, tgt_out.unsqueeze(-1)).squeeze(-1)
        seen.append((model.baseline.item(), token.masked_fill(tgt_out.eq(model.pad_id), 0.0).sum(-1)))
        return loss(out, tgt_out, label_smoothing, guide)

    monkeypatch.setattr(model, "loss", recording_loss)
    group = trainer.train_data.batches(trainer.cfg.train.batch_tokens, shuffle=False)[:2]
    trainer.update(*group)
    assert len(seen) == 2 and [b for b, _ in seen] == [0.0, 0.0]
    moved = 0.5 * torch.cat([r for _, r in seen]).mean().item()  # b = 0.5 * 0 + 0.5 * mean r
    assert model.baseline.item() == pytest.approx(moved, rel=1e-5)
    trainer.update(*group)
    assert [b for b, _ in seen[2:]] == pytest.approx([moved, moved], rel=1e-5)


def test_checkpoint_captions_image_files_like_cached_grids(tiny_flickr: Path, tmp_path: Path) -> None:
    """A trained checkpoint reloads with its CNN; captioning the files equals captioning the cached grids."""
    trainer = Trainer(caption_config(tiny_flickr, tmp_path, "train.max_steps=8"), log=quiet)
    trainer.train()
    assert (tmp_path / "best.pt").is_file() and trainer.progress.best_metric >= 0
    model, cfg, task = load_model(tmp_path / "best.pt")
    assert task.src_tok is None and len(task.tgt_tok) == len(trainer.tgt_tok)
    captioner = Predictor(task, model, cfg.search, torch.device("cpu"))
    valid = trainer.valid_data
    # the CNN of the reloaded checkpoint gives the cached grids up to their float16 storage
    fresh, _ = task.collate_inputs(model, valid.split.images, torch.device("cpu"))
    torch.testing.assert_close(fresh, valid.grids.float(), rtol=2e-3, atol=2e-3 * valid.grids.float().abs().max().item())
    from_files = captioner.predict(valid.split.images)
    from_grids = captioner.predict(list(valid.grids))
    for a, b in zip(from_files, from_grids):
        assert a[0].tokens == b[0].tokens and a[0].score == pytest.approx(b[0].score, abs=1e-3)
        assert a[0].alpha.shape == (len(a[0].tokens) + int(a[0].finished), 4)
        torch.testing.assert_close(a[0].alpha, b[0].alpha, rtol=0, atol=1e-3)


def test_validation_cider_is_pycocoevalcaps_without_java_or_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """cider() is caption_scores' CIDEr without Java (the same Python tokenisation), and runs no process
    and opens no socket: pycocoevalcap's CIDEr is pure Python and downloads nothing."""
    refs = {"dog": ["A dog runs on the grass.", "A brown dog is running"],
            "chess": ["Two men play chess", "Men playing a board game ."],
            "girl": ["A girl eats ice-cream!", "A child with an ice cream cone"]}
    hyps = {"dog": "a dog is running on grass", "chess": "two men play a game", "girl": "a girl eats"}
    monkeypatch.setattr(shutil, "which", lambda name: None)
    expected = caption_scores(hyps, refs, log=quiet)["CIDEr"]

    def refused(*_: object, **__: object) -> None:
        raise AssertionError("CIDEr started a process or opened a socket")

    monkeypatch.setattr(subprocess, "Popen", refused)
    monkeypatch.setattr(socket, "socket", refused)
    assert cider(list(hyps.values()), list(refs.values())) == pytest.approx(expected, abs=1e-9) and expected > 0


def test_cider_validation_keeps_the_best_cider_checkpoint(tiny_flickr: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """captions.valid_metric=cider: the log, messages and summary name CIDEr; best.pt is the step of the
    highest logged CIDEr, and its captions score that CIDEr by pycocoevalcap (caption_scores without
    Java). In this run BLEU would have kept another step: last.pt's captions beat best.pt's by BLEU and
    lose by CIDEr."""
    messages: list[str] = []
    trainer = Trainer(caption_config(tiny_flickr, tmp_path, "captions.valid_metric=cider", "captions.min_count=2",
                                     "model.emb_dim=32", "model.hidden_dim=64", "model.attention_dim=32",
                                     "train.lr=0.01", "train.batch_tokens=100", "train.max_steps=40"),
                      log=messages.append)
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    valid = [r for r in records if "valid_loss" in r]
    assert len(valid) == 10 and all("valid_cider" in r and "valid_bleu" not in r for r in valid)
    assert any("validation by CIDEr" in m for m in messages)
    assert sum(m.startswith("step ") and " CIDEr " in m for m in messages) == 10
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["metric"] == "cider" and "best_valid_cider" in summary
    cider_by_step = {r["step"]: r["valid_cider"] for r in valid}
    best_step = max(cider_by_step, key=lambda step: (cider_by_step[step], -step))  # the first of the highest
    assert summary["best_valid_cider"] == trainer.progress.best_metric == cider_by_step[best_step]
    assert load_checkpoint(tmp_path / "best.pt")["progress"]["step"] == best_step != max(cider_by_step)

    task, device = trainer.task, torch.device("cpu")
    captions = {name: task.validate(load_model(tmp_path / f"{name}.pt")[0], trainer.valid_search, device, None).outputs
                for name in ("best", "last")}
    refs = {str(i): caps for i, caps in enumerate(task.valid_data.split.captions)}
    monkeypatch.setattr(shutil, "which", lambda name: None)
    cider_of = {name: caption_scores(dict(zip(refs, c)), refs, log=quiet)["CIDEr"] for name, c in captions.items()}
    monkeypatch.setattr(task, "metric", CAPTION_METRICS["bleu"])
    bleu_of = {name: task.score(c) for name, c in captions.items()}
    assert cider_of["best"] == pytest.approx(cider_by_step[best_step], abs=1e-6)
    assert cider_of["best"] > cider_of["last"] and bleu_of["best"] < bleu_of["last"]


def test_unknown_valid_metric_names_the_file_key_and_choices(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model: {arch: show-attend-tell}\ncaptions: {valid_metric: meteor}\n", encoding="utf-8")
    with pytest.raises(SeqattnError) as err:
        load_config(recipe)
    assert str(err.value) == f"{recipe}: captions.valid_metric: unknown 'meteor'; choose one of bleu, cider"


def test_resuming_by_another_metric_is_an_error(tiny_flickr: Path, tmp_path: Path) -> None:
    Trainer(caption_config(tiny_flickr, tmp_path, "captions.valid_metric=cider", "train.max_steps=2",
                           "train.valid_every=2"), log=quiet).train()
    with pytest.raises(SeqattnError, match=re.escape(f"{tmp_path / 'last.pt'}: was validated by cider, this config "
                                                     "validates by bleu; resume with the same metric or start a new out_dir")):
        Trainer(caption_config(tiny_flickr, tmp_path, "train.max_steps=4"), resume=True, log=quiet)


def test_trained_backbone_gets_images_and_gradients(tiny_flickr: Path, tmp_path: Path) -> None:
    """backbone.freeze=false: batches carry transformed images and the CNN learns."""
    trainer = Trainer(caption_config(tiny_flickr, tmp_path, "backbone.freeze=false", "backbone.image_size=32",
                                     "train.max_steps=1", "train.valid_every=100"), log=quiet)
    batch = trainer.train_data.batch(trainer.train_data.batches(200, shuffle=False)[0], trainer.tgt_tok)
    assert batch.src.shape[1:] == (3, 32, 32) and batch.src_mask.shape[1] == 4
    before = trainer.model.backbone.trunk.conv1.weight.clone()
    trainer.train()
    assert not torch.equal(before, trainer.model.backbone.trunk.conv1.weight)
