"""The captioning task end to end: feature cache, training through the shared trainer, resuming,
loading a checkpoint and captioning image files with the shared search."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqattn.config import load_config
from seqattn.errors import SeqattnError
from seqattn.inference import Predictor
from seqattn.tasks.captioning import CaptioningTask
from seqattn.training import Trainer
from seqattn.training.checkpoint import load_model


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


def test_trained_backbone_gets_images_and_gradients(tiny_flickr: Path, tmp_path: Path) -> None:
    """backbone.freeze=false: batches carry transformed images and the CNN learns."""
    trainer = Trainer(caption_config(tiny_flickr, tmp_path, "backbone.freeze=false", "backbone.image_size=32",
                                     "train.max_steps=1", "train.valid_every=100"), log=quiet)
    batch = trainer.train_data.batch(trainer.train_data.batches(200, shuffle=False)[0], trainer.tgt_tok)
    assert batch.src.shape[1:] == (3, 32, 32) and batch.src_mask.shape[1] == 4
    before = trainer.model.backbone.trunk.conv1.weight.clone()
    trainer.train()
    assert not torch.equal(before, trainer.model.backbone.trunk.conv1.weight)
