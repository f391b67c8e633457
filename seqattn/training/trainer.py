"""The training loop shared by every model: token-level cross-entropy with label smoothing, Adam,
gradient clipping, LR schedules, validation by loss / perplexity / sacreBLEU, best-by-BLEU and
last checkpoints, early stopping, exact resumption, JSONL (and TensorBoard) logs, CUDA + AMP.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from seqattn.config import Config, config_from_dict
from seqattn.data import prepare
from seqattn.errors import SeqattnError
from seqattn.evaluation import corpus_bleu
from seqattn.models import build_model
from seqattn.training.checkpoint import load_checkpoint, save_checkpoint
from seqattn.training.optim import build_optimizer, build_scheduler
from seqattn.translator import Translator


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SeqattnError(f"train.device={name}: CUDA is not available here; use train.device=cpu")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for train.precision, None for full fp32."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise SeqattnError("train.precision=fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
        return torch.float16
    raise SeqattnError(f"train.precision: {precision!r} is not auto, fp32, fp16 or bf16")


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint so --resume continues exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already trained on
    best_bleu: float = -1.0
    bad_validations: int = 0  # validations since the last BLEU improvement
    elapsed: float = 0.0  # seconds of training so far, across resumptions


class Trainer:
    def __init__(self, cfg: Config, resume: bool = False, log=print) -> None:
        self.cfg, self.log = cfg, log
        t = cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        self.out = Path(cfg.out_dir)
        if not resume and (self.out / "last.pt").exists():
            raise SeqattnError(
                f"{self.out / 'last.pt'} exists: pass --resume to continue that run, or choose another out_dir"
            )
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(t.device)
        self.amp_dtype = autocast_dtype(t.precision, self.device)
        torch.manual_seed(t.seed)
        self.src_tok, self.tgt_tok, self.train_data, self.valid_data = prepare(cfg, log=log)
        if t.valid_max_sentences:
            self.valid_data = self.valid_data.subset(list(range(min(t.valid_max_sentences, len(self.valid_data)))))
        self.model = build_model(
            cfg.model, len(self.src_tok), len(self.tgt_tok), self.tgt_tok.pad_id, self.tgt_tok.bos_id, self.tgt_tok.eos_id
        ).to(self.device)
        self.optimizer = build_optimizer(t, self.model)
        self.scheduler = build_scheduler(t, self.optimizer)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.progress = Progress()
        # validation BLEU comes from the configured search, never from sampling
        valid_search = dataclasses.replace(cfg.search, sampling=False, nbest=1)
        self.translator = Translator(self.model, self.src_tok, self.tgt_tok, valid_search, self.device)
        if resume:
            self.restore(self.out / "last.pt")
        else:
            (self.out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
        n_params = sum(p.numel() for p in self.model.parameters())
        log(f"model {cfg.model.arch}: {n_params:,} parameters on {self.device}, precision {t.precision}")

    def open_tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return None
        return SummaryWriter(str(self.out / "tensorboard"))

    # ---- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            "progress": vars(self.progress).copy(),
        }

    def restore(self, path: Path) -> None:
        ckpt = load_checkpoint(path, self.device)
        saved = config_from_dict(ckpt["config"], source=str(path))
        if saved.model != self.cfg.model:
            raise SeqattnError(
                f"{path}: was trained with a different model section; resume with the same config "
                "or start a new out_dir"
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        if ckpt["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["rng"]["cuda"]])
        self.progress = Progress(**ckpt["progress"])
        self.log(f"resumed from {path} at step {self.progress.step} (epoch {self.progress.epoch})")

    # ---- one update ---------------------------------------------------------------------------
    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def loss(self, logits: torch.Tensor, tgt_out: torch.Tensor, label_smoothing: float) -> torch.Tensor:
        """Summed token cross-entropy, padding ignored: logits [B, T, V], tgt_out [B, T]."""
        return F.cross_entropy(
            logits.flatten(0, 1).float(), tgt_out.flatten(), ignore_index=self.tgt_tok.pad_id,
            label_smoothing=label_smoothing, reduction="sum",
        )

    def update(self, batch_ids: list[int]) -> tuple[float, int]:
        """One optimiser step on one batch -> (summed loss, target tokens)."""
        batch = self.train_data.batch(batch_ids, self.tgt_tok).to(self.device)
        self.model.train()
        with self.autocast():
            logits, _ = self.model(batch.src, batch.src_mask, batch.tgt_in, need_alpha=False)
        loss = self.loss(logits, batch.tgt_out, self.cfg.train.label_smoothing)
        self.scaler.scale(loss / batch.ntokens).backward()
        if self.cfg.train.clip_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
            self.scheduler.step()
        return loss.item(), batch.ntokens

    # ---- validation ---------------------------------------------------------------------------
    @torch.inference_mode()
    def validate(self) -> dict[str, float]:
        """Loss and perplexity by teacher forcing, sacreBLEU by the configured search."""
        self.model.eval()
        total, tokens = 0.0, 0
        for ids in self.valid_data.batches(self.cfg.train.batch_tokens, shuffle=False):
            batch = self.valid_data.batch(ids, self.tgt_tok).to(self.device)
            with self.autocast():
                logits, _ = self.model(batch.src, batch.src_mask, batch.tgt_in, need_alpha=False)
            total += self.loss(logits, batch.tgt_out, 0.0).item()
            tokens += batch.ntokens
        hyps = [self.translator.detokenize(h[0]) for h in self.translator.translate_ids(self.valid_data.src_ids)]
        bleu = corpus_bleu(hyps, [self.valid_data.tgt_text])
        (self.out / "valid.hyp").write_text("\n".join(hyps) + "\n", encoding="utf-8")
        return {"valid_loss": total / tokens, "valid_ppl": math.exp(min(total / tokens, 100)), "valid_bleu": bleu.score}

    def write_log(self, record: dict[str, Any]) -> None:
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        if self.tensorboard is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, record["step"])

    def validate_and_save(self) -> bool:
        """Validate, keep the best checkpoint by BLEU, write last.pt; True when patience ran out."""
        p, t = self.progress, self.cfg.train
        metrics = self.validate()
        improved = metrics["valid_bleu"] > p.best_bleu
        p.best_bleu = max(p.best_bleu, metrics["valid_bleu"])
        p.bad_validations = 0 if improved else p.bad_validations + 1
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(metrics["valid_bleu"])
        record = {"step": p.step, "epoch": p.epoch, **metrics, "lr": self.optimizer.param_groups[0]["lr"], "elapsed": p.elapsed}
        self.write_log(record)
        self.log(
            f"step {p.step} valid loss {metrics['valid_loss']:.3f} ppl {metrics['valid_ppl']:.2f} "
            f"BLEU {metrics['valid_bleu']:.2f}{' (best)' if improved else ''}"
        )
        state = self.state()
        if improved:
            save_checkpoint(state, self.out / "best.pt")
        save_checkpoint(state, self.out / "last.pt")
        return bool(t.patience) and p.bad_validations >= t.patience

    # ---- the loop -----------------------------------------------------------------------------
    def stop_reason(self) -> str | None:
        p, t = self.progress, self.cfg.train
        if t.max_steps and p.step >= t.max_steps:
            return f"reached train.max_steps={t.max_steps}"
        if t.max_epochs and p.epoch >= t.max_epochs:
            return f"reached train.max_epochs={t.max_epochs}"
        if t.max_minutes and p.elapsed >= 60 * t.max_minutes:
            return f"reached train.max_minutes={t.max_minutes}"
        return None

    def train(self) -> Progress:
        """Train until a stop condition. Ctrl-C or SIGTERM stop after the update under way and
        write last.pt, so `--resume` continues exactly from there."""
        signals: list[str] = []
        catch = lambda signum, _frame: signals.append(signal.Signals(signum).name)  # noqa: E731
        previous = {sig: signal.signal(sig, catch) for sig in (signal.SIGINT, signal.SIGTERM)}
        self.jsonl = (self.out / "train.jsonl").open("a", encoding="utf-8")
        self.tensorboard = self.open_tensorboard()
        try:
            reason = self.run(signals)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.jsonl.close()
            if self.tensorboard is not None:
                self.tensorboard.close()
        self.log(f"training stopped: {reason}; best valid BLEU {self.progress.best_bleu:.2f} -> {self.out / 'best.pt'}")
        return self.progress

    def run(self, signals: list[str]) -> str:
        """The loop over epochs and batches -> why it stopped."""
        p, t = self.progress, self.cfg.train
        reason = self.stop_reason()
        window_loss, window_tokens, window_start = 0.0, 0, time.perf_counter()
        while reason is None:
            batches = self.train_data.batches(t.batch_tokens, shuffle=True, seed=t.seed + p.epoch)
            bar = tqdm(total=len(batches), initial=p.batch_in_epoch, desc=f"epoch {p.epoch + 1}", leave=False,
                       disable=None if t.progress else True)
            for ids in batches[p.batch_in_epoch :]:
                started = time.perf_counter()
                loss, tokens = self.update(ids)
                p.step, p.batch_in_epoch = p.step + 1, p.batch_in_epoch + 1
                if p.batch_in_epoch == len(batches):
                    p.epoch, p.batch_in_epoch = p.epoch + 1, 0
                p.elapsed += time.perf_counter() - started
                window_loss, window_tokens = window_loss + loss, window_tokens + tokens
                bar.update()
                if p.step % t.log_every == 0:
                    seconds = time.perf_counter() - window_start
                    record = {"step": p.step, "epoch": p.epoch, "train_loss": window_loss / window_tokens,
                              "lr": self.optimizer.param_groups[0]["lr"], "tokens_per_s": window_tokens / seconds}
                    self.write_log(record)
                    bar.set_postfix(loss=f"{record['train_loss']:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
                    window_loss, window_tokens, window_start = 0.0, 0, time.perf_counter()
                if signals:
                    save_checkpoint(self.state(), self.out / "last.pt")
                    bar.close()
                    return f"{signals[0]} at step {p.step}, saved {self.out / 'last.pt'}; continue with --resume"
                reason = self.stop_reason()
                if p.step % t.valid_every == 0 or reason is not None:
                    started = time.perf_counter()
                    if self.validate_and_save():
                        reason = f"no BLEU improvement in train.patience={t.patience} validations"
                    p.elapsed += time.perf_counter() - started
                    window_loss, window_tokens, window_start = 0.0, 0, time.perf_counter()
                if reason is not None:
                    break
            bar.close()
        return reason
