"""Training: exact resumption, atomic weights-only checkpoints, early stopping, schedules, logs,
gradient accumulation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqattn.config import SearchConfig, load_config
from seqattn.errors import SeqattnError
from seqattn.registry import TASKS
from seqattn.tasks import Metric, Validation
from seqattn.tasks.translation import TranslationTask
from seqattn.training import Trainer, load_checkpoint, load_model, save_checkpoint
from seqattn.training.optim import Cosine, InverseSqrt


def tiny_config(corpus: Path, out: Path, *overrides: str):
    return load_config(None, [
        f"out_dir={out}", f"data.root={corpus}", "data.corpus=.", "subword.vocab_size=250",
        "model.emb_dim=16", "model.hidden_dim=24", "model.attention_dim=16", "model.readout_dim=24",
        "model.dropout=0.3", "train.batch_tokens=1200", "train.valid_every=5", "train.log_every=2",
        "train.progress=false", "search.beam_size=2", "search.max_len_a=1.0", "search.max_len_b=2", *overrides,
    ])


def quiet(*_: object) -> None:
    pass


def assert_near(got: torch.Tensor, want: torch.Tensor, rel: float) -> None:
    """`got` within `rel` of `want`, relative to the norm of `want` (for sums of rounded terms)."""
    assert (got - want).norm() <= rel * want.norm(), f"off by {(got - want).norm() / want.norm():.2e}"


TRANSFORMER = ("model.arch=transformer", "model.hidden_dim=16", "model.heads=2", "model.ffn_dim=32",
               "model.encoder_layers=1", "model.decoder_layers=1", "model.attention_dropout=0.2")


@pytest.mark.parametrize("model", [(), TRANSFORMER], ids=["rnnsearch", "transformer"])
def test_resumed_training_equals_uninterrupted(small_corpus: Path, tmp_path: Path, model: tuple[str, ...]) -> None:
    """Stop at step 10 (inside epoch 1), resume to 25 (past the epoch boundary): same weights, with
    dropout everywhere (the Transformer's attention dropout too) and the fused Adam."""
    whole = Trainer(tiny_config(small_corpus, tmp_path / "whole", "train.max_steps=25", *model), log=quiet)
    whole.train()
    assert whole.optimizer.defaults["fused"]
    first = Trainer(tiny_config(small_corpus, tmp_path / "split", "train.max_steps=10", *model), log=quiet)
    first.train()
    assert first.progress.epoch == 0 < whole.progress.epoch
    resumed = Trainer(tiny_config(small_corpus, tmp_path / "split", "train.max_steps=25", *model), resume=True,
                      log=quiet)
    assert resumed.progress.step == 10
    resumed.train()
    assert vars(resumed.progress) | {"elapsed": 0} == vars(whole.progress) | {"elapsed": 0}
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    a_state, b_state = whole.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(a_state[k]["exp_avg"], b_state[k]["exp_avg"]) for k in a_state)


def test_checkpoints_are_weights_only_and_load_for_decoding(small_corpus: Path, tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(small_corpus, tmp_path, "train.max_steps=5"), log=quiet)
    trainer.train()
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(tmp_path / name, weights_only=True)
        assert ckpt["progress"]["step"] == 5 and "rng" in ckpt and "optimizer" in ckpt
    model, cfg, task = load_model(tmp_path / "best.pt")
    assert not model.training and cfg.model.hidden_dim == 24 and len(task.src_tok) == len(task.tgt_tok) == 250
    records = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert {"train_loss", "tokens_per_s"} <= set(records[0]) and "valid_bleu" in records[-1]


def test_interrupted_save_keeps_the_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)

    def crash(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2}, path)
    assert load_checkpoint(path) == {"step": 1}


def test_foreign_or_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SeqattnError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SeqattnError, match="bad.pt: not a seqattn checkpoint: "):
        load_checkpoint(tmp_path / "bad.pt")


def test_resume_refuses_another_model_and_a_fresh_start_keeps_the_run(small_corpus: Path, tmp_path: Path) -> None:
    Trainer(tiny_config(small_corpus, tmp_path, "train.max_steps=2"), log=quiet).train()
    with pytest.raises(SeqattnError, match="last.pt exists: pass --resume"):
        Trainer(tiny_config(small_corpus, tmp_path, "train.max_steps=2"), log=quiet)
    with pytest.raises(SeqattnError, match="different model section"):
        Trainer(tiny_config(small_corpus, tmp_path, "model.hidden_dim=32"), resume=True, log=quiet)


def test_early_stopping_after_patience(small_corpus: Path, tmp_path: Path) -> None:
    """With lr 0 BLEU never improves after the first validation: patience 2 stops at the third."""
    trainer = Trainer(tiny_config(small_corpus, tmp_path, "train.lr=0.0", "train.schedule=constant",
                                  "train.patience=2", "train.valid_every=3", "train.max_steps=100"), log=quiet)
    assert trainer.train().step == 9


def test_resuming_an_early_stopped_run_trains_no_further(small_corpus: Path, tmp_path: Path) -> None:
    """Patience ran out at step 9: --resume finds the run over and leaves last.pt as it was."""
    overrides = ("train.lr=0.0", "train.schedule=constant", "train.patience=2", "train.valid_every=3",
                 "train.max_steps=100")
    Trainer(tiny_config(small_corpus, tmp_path, *overrides), log=quiet).train()
    before = (tmp_path / "last.pt").read_bytes()
    messages: list[str] = []
    assert Trainer(tiny_config(small_corpus, tmp_path, *overrides), resume=True, log=messages.append).train().step == 9
    assert "no BLEU improvement in train.patience=2" in messages[-1]
    assert (tmp_path / "last.pt").read_bytes() == before


def test_inverse_sqrt_schedule_golden() -> None:
    factor = InverseSqrt(warmup_steps=100)
    assert [factor(s) for s in (1, 50, 100, 400)] == [0.01, 0.5, 1.0, 0.5]


def test_bad_precision_and_device_are_named(small_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(SeqattnError, match="train.precision=fp16 needs a CUDA device"):
        Trainer(tiny_config(small_corpus, tmp_path, "train.precision=fp16", "train.device=cpu"), log=quiet)
    with pytest.raises(SeqattnError, match="train.schedule"):
        Trainer(tiny_config(small_corpus, tmp_path, "train.schedule=cosine"), log=quiet)
    with pytest.raises(SeqattnError, match="train.accumulate: 0"):
        Trainer(tiny_config(small_corpus, tmp_path, "train.accumulate=0"), log=quiet)


def test_accumulated_update_is_one_step_on_both_batches(small_corpus: Path, tmp_path: Path) -> None:
    """accumulate=2: one optimiser step on the two batches' summed loss over their total target tokens.
    Adam's step hides the gradient's scale, its first moment (1 - beta1) * gradient does not."""
    options = ("model.dropout=0.0", "train.clip_norm=0", "train.precision=fp32")  # no fp16 autocast on a GPU
    acc = Trainer(tiny_config(small_corpus, tmp_path, *options, "train.accumulate=2"), log=quiet)
    ref = Trainer(tiny_config(small_corpus, tmp_path, *options), log=quiet)
    t = ref.cfg.train
    pair = acc.train_data.batches(t.batch_tokens, shuffle=True, seed=t.seed)[:2]
    loss, tokens = acc.update(*pair)
    batches = [ref.train_data.batch(ids, ref.tgt_tok).to(ref.device) for ids in pair]
    ref.model.train()
    summed = sum(ref.model.loss(ref.model(b.src, b.src_mask, b.tgt_in), b.tgt_out, t.label_smoothing) for b in batches)
    assert tokens == sum(b.ntokens for b in batches) and loss == pytest.approx(summed.item(), rel=1e-6)
    (summed / tokens).backward()
    ref.optimizer.step()
    for a, b in zip(acc.model.parameters(), ref.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        assert_near(acc.optimizer.state[a]["exp_avg"], ref.optimizer.state[b]["exp_avg"], 1e-5)


def test_accumulated_training_resumes_exactly(small_corpus: Path, tmp_path: Path) -> None:
    """accumulate=2 over 17 batches an epoch, so update 9 takes the last batch alone. Stopped at
    update 4 (mid-epoch) and resumed to 12 (past the epoch boundary): the same weights."""
    options = ("train.accumulate=2", "train.batch_tokens=1000", "train.valid_every=4",
               "train.precision=fp32")  # on a GPU fp16's loss scaler would skip updates
    whole = Trainer(tiny_config(small_corpus, tmp_path / "whole", *options, "train.max_steps=12"), log=quiet)
    whole.train()
    assert (whole.progress.epoch, whole.progress.batch_in_epoch) == (1, 6)
    Trainer(tiny_config(small_corpus, tmp_path / "split", *options, "train.max_steps=4"), log=quiet).train()
    resumed = Trainer(tiny_config(small_corpus, tmp_path / "split", *options, "train.max_steps=12"),
                      resume=True, log=quiet)
    assert (resumed.progress.step, resumed.progress.batch_in_epoch) == (4, 8)
    resumed.train()
    assert vars(resumed.progress) | {"elapsed": 0} == vars(whole.progress) | {"elapsed": 0}
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_interrupt_saves_and_resumes_exactly(small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM during update 7 stops after it with last.pt at step 7; resuming reaches the same weights."""
    import os
    import signal

    whole = Trainer(tiny_config(small_corpus, tmp_path / "whole", "train.max_steps=12"), log=quiet)
    whole.train()
    cut = Trainer(tiny_config(small_corpus, tmp_path / "cut", "train.max_steps=12"), log=quiet)
    update = cut.update

    def update_then_signal(ids):
        result = update(ids)
        if cut.progress.step == 6:  # the seventh update is under way
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(cut, "update", update_then_signal)
    assert cut.train().step == 7
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["progress"]["step"] == 7
    resumed = Trainer(tiny_config(small_corpus, tmp_path / "cut", "train.max_steps=12"), resume=True, log=quiet)
    assert resumed.progress.step == 7  # from last.pt, not from scratch
    resumed.train()
    assert vars(resumed.progress) | {"elapsed": 0} == vars(whole.progress) | {"elapsed": 0}
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


class ScriptedTask(TranslationTask):
    """Translation whose validation metric is read from `script`, in the direction of `metric`."""

    script: list[float] = []

    def validate(self, model, search: SearchConfig, device: torch.device, amp_dtype) -> Validation:
        return Validation(["-"], self.script.pop(0))


@pytest.mark.parametrize("metric, values", [
    (Metric("bleu", "BLEU", higher_is_better=True), [1.0, 3.0, 2.0, 2.5]),
    (Metric("wer", "WER", higher_is_better=False), [3.0, 1.0, 2.0, 1.5]),
])
def test_best_checkpoint_plateau_and_patience_follow_the_metric_direction(
    small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metric: Metric, values: list[float],
) -> None:
    """The second validation is the best, the third and fourth are worse: best.pt keeps the second's
    weights, the plateau schedule halves the LR at the third and fourth (plateau_patience 0), and
    patience 2 stops at the fourth; the model hears of every validation."""
    monkeypatch.setitem(TASKS, "translation", f"{__name__}:ScriptedTask")
    monkeypatch.setattr(ScriptedTask, "metric", metric)
    monkeypatch.setattr(ScriptedTask, "script", list(values))
    messages: list[str] = []
    trainer = Trainer(tiny_config(small_corpus, tmp_path, "train.valid_every=1", "train.max_steps=100",
                                  "train.patience=2", "train.schedule=plateau", "train.plateau_patience=0"),
                      log=messages.append)
    snapshots, heard = [], []

    def after_validation(metrics: dict[str, float], epochs: float) -> bool:
        heard.append(metrics[f"valid_{metric.name}"])
        snapshots.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
        return False

    monkeypatch.setattr(trainer.model, "after_validation", after_validation)
    progress = trainer.train()
    assert progress.step == 4 and heard == values and (progress.best_metric, progress.metric) == (values[1], values[3])
    assert f"no {metric.label} improvement in train.patience=2" in messages[-1]
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["progress"]["step"] == 2
    for name, tensor in snapshots[1].items():
        assert torch.equal(best["model"][name], tensor), name
    assert not all(torch.equal(snapshots[3][k], t) for k, t in snapshots[1].items())
    validations = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()
                   if f"valid_{metric.name}" in line]
    assert [r[f"valid_{metric.name}"] for r in validations] == values
    lr = trainer.cfg.train.lr
    assert [r["lr"] for r in validations] == pytest.approx([lr, lr, lr / 2, lr / 4])


def test_progress_of_an_old_checkpoint_resumes(small_corpus: Path, tmp_path: Path) -> None:
    """A last.pt written before tasks named their metric (progress best_bleu) resumes with it as best_metric."""
    Trainer(tiny_config(small_corpus, tmp_path, "train.max_steps=2"), log=quiet).train()
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    progress = ckpt["progress"]
    del progress["metric"]
    progress["best_bleu"] = progress.pop("best_metric")
    save_checkpoint(ckpt, tmp_path / "last.pt")
    resumed = Trainer(tiny_config(small_corpus, tmp_path, "train.max_steps=4"), resume=True, log=quiet)
    assert (resumed.progress.step, resumed.progress.best_metric) == (2, progress["best_bleu"])
    assert resumed.train().step == 4
    load_model(tmp_path / "last.pt")


def test_cosine_schedule_golden() -> None:
    factor = Cosine(total=8)
    assert [factor(s) for s in (0, 4, 8, 9)] == pytest.approx([1.0, 0.5, 0.0, 0.0])


def test_max_epochs_and_max_minutes_stop_training(small_corpus: Path, tmp_path: Path) -> None:
    """max_epochs=1 stops at the end of the first epoch; a budget of 1e-9 minutes (60 ns) after the first update."""
    messages: list[str] = []
    trainer = Trainer(tiny_config(small_corpus, tmp_path / "epochs", "train.max_epochs=1", "train.valid_every=0"),
                      log=messages.append)
    progress = trainer.train()
    assert (progress.epoch, progress.batch_in_epoch, progress.step) == (1, 0, trainer.batches_per_epoch)
    assert "training stopped: reached train.max_epochs=1" in messages[-1]
    messages.clear()
    progress = Trainer(tiny_config(small_corpus, tmp_path / "minutes", "train.max_minutes=0.000000001",
                                   "train.max_steps=50"),
                       log=messages.append).train()
    assert progress.step == 1 and "training stopped: reached train.max_minutes=1e-09" in messages[-1]


def test_recommenced_training_restarts_best_patience_and_plateau(
    small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model changes after the third validation (as MemN2N's linear start ends): the fourth, worse
    than the second, is the new best.pt; the LR halved at the third is back at train.lr; patience 2
    counts from there, so training stops at the sixth instead of the fourth."""
    monkeypatch.setitem(TASKS, "translation", f"{__name__}:ScriptedTask")
    monkeypatch.setattr(ScriptedTask, "script", [1.0, 3.0, 2.0, 1.5, 1.0, 0.5])
    messages: list[str] = []
    trainer = Trainer(tiny_config(small_corpus, tmp_path, "train.valid_every=1", "train.max_steps=100",
                                  "train.patience=2", "train.schedule=plateau", "train.plateau_patience=0"),
                      log=messages.append)
    heard: list[float] = []
    epochs_heard: list[float] = []

    def after_validation(metrics: dict[str, float], epochs: float) -> bool:
        heard.append(metrics["valid_bleu"])
        epochs_heard.append(epochs)
        return len(heard) == 3

    monkeypatch.setattr(trainer.model, "after_validation", after_validation)
    progress = trainer.train()
    assert progress.step == 6 and progress.best_metric == 1.5
    assert [m.split("; ")[-1] for m in messages if "restart" in m] == [
        "the model changed: best metric, early stopping and the plateau schedule (at train.lr) restart"]
    per_step = 1 / trainer.batches_per_epoch  # one batch an update: the epochs trained at steps 1..6
    assert epochs_heard == pytest.approx([s * per_step for s in range(1, 7)])
    assert torch.load(tmp_path / "best.pt", weights_only=True)["progress"]["step"] == 4
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "train.jsonl").read_text().splitlines() if "valid_bleu" in line]
    lr = trainer.cfg.train.lr
    assert lrs == pytest.approx([lr, lr, lr, lr, lr / 2, lr / 4])


def test_plateau_halves_the_lr_after_plateau_patience_bad_validations(
    small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """plateau_patience 2: the LR halves at the third validation in a row without a better BLEU
    (ReduceLROnPlateau counts more than `patience` bad ones), then again three later."""
    monkeypatch.setitem(TASKS, "translation", f"{__name__}:ScriptedTask")
    monkeypatch.setattr(ScriptedTask, "script", [1.0] + [0.5] * 6)
    trainer = Trainer(tiny_config(small_corpus, tmp_path, "train.valid_every=1", "train.max_steps=7",
                                  "train.schedule=plateau", "train.plateau_patience=2"), log=quiet)
    trainer.train()
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "train.jsonl").read_text().splitlines() if "valid_bleu" in line]
    lr = trainer.cfg.train.lr
    assert lrs == pytest.approx([lr, lr, lr, lr / 2, lr / 2, lr / 2, lr / 4])
