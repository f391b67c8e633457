"""The training loop shared by every task: the model's loss (token-level cross-entropy with label
smoothing, ...), Adam or SGD, gradient clipping and accumulation, LR schedules, validation by loss /
perplexity and the task's metric (BLEU, accuracy, ...), the best checkpoint by that metric and the
last one, early stopping, exact resumption, JSONL (and TensorBoard) logs, a summary, CUDA + AMP, and
data parallelism (DDP) when started by torchrun.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import signal
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from seqattn.allocator import keep_freed_memory
from seqattn.config import Config, config_from_dict, validate
from seqattn.errors import SeqattnError
from seqattn.models import Guide
from seqattn.precision import autocast, autocast_dtype
from seqattn.tasks import build_task
from seqattn.training.checkpoint import checked, load_checkpoint, restore_training, save_checkpoint, training_state
from seqattn.training.optim import build_optimizer, build_scheduler

# how long the other ranks wait for rank 0 training the subword models (or caching features),
# validating and writing checkpoints alone; train.collective_timeout bounds every other wait
MAIN_ALONE_TIMEOUT = timedelta(hours=1)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SeqattnError(f"train.device={name}: CUDA is not available here; use train.device=cpu")
    return torch.device(name)


def start_distributed(device: torch.device, collective_timeout: float
                      ) -> tuple[int, int, torch.device, dist.ProcessGroup | None]:
    """(rank, world size, device, waiting group) of this process. Started by torchrun (WORLD_SIZE > 1),
    it joins the process group, nccl with cuda:LOCAL_RANK on GPUs, gloo on the CPU, whose collectives
    fail after `collective_timeout` seconds without every process, and the waiting group (gloo, with
    MAIN_ALONE_TIMEOUT), where the other ranks wait for rank 0."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, device, None
    if device.type == "cuda":
        local_rank, gpus = int(os.environ["LOCAL_RANK"]), torch.cuda.device_count()
        if local_rank >= gpus or device.index not in (None, local_rank):
            raise SeqattnError(
                f"train.device={device}: under torchrun process {local_rank} of a node uses cuda:{local_rank} "
                f"and this node has {gpus} GPU(s); use train.device=auto and at most one process per GPU"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                            timeout=timedelta(seconds=collective_timeout),
                            device_id=device if device.type == "cuda" else None)
    return dist.get_rank(), world_size, device, dist.new_group(backend="gloo", timeout=MAIN_ALONE_TIMEOUT)


def lost_peer(err: RuntimeError) -> bool:
    """Whether `err` is a collective that failed because another process died or stopped answering:
    c10d and nccl raise DistError, gloo a RuntimeError from its transport."""
    return isinstance(err, dist.DistError) or "gloo/transport" in str(err)


def first_sentence(err: Exception) -> str:
    """The first sentence of an error message, without the source location gloo puts before it."""
    text = re.sub(r"^\[[^\]]*\]:?\s*", "", str(err).strip())
    return re.split(r"(?<=\w)\.\s|\n", text, maxsplit=1)[0]


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint so --resume continues exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already trained on (by all ranks together)
    metric: float | None = None  # the task's metric at the last validation
    best_metric: float | None = None  # its best value so far (best.pt's)
    bad_validations: int = 0  # validations since the metric last improved
    metric_name: str = ""  # the metric's name (Metric.name); "" in checkpoints written before it was saved
    elapsed: float = 0.0  # seconds of training so far, across resumptions

    @classmethod
    def from_checkpoint(cls, saved: dict[str, Any]) -> Progress:
        """The progress a checkpoint saved, also one written before tasks named their metric (best_bleu)."""
        saved = dict(saved)
        if "best_bleu" in saved:
            saved["best_metric"] = saved.pop("best_bleu")
        return cls(**saved)


@contextlib.contextmanager
def caught_signals() -> Iterator[list[int]]:
    """Within the block Ctrl-C (SIGINT) and SIGTERM do not interrupt: they are appended to the list it
    gives, for the training loop to stop after the update under way; the handlers are restored after."""
    signals: list[int] = []
    catch = lambda signum, _frame: signals.append(signum)  # noqa: E731
    previous = {sig: signal.signal(sig, catch) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_folder(cfg: Config, resume: bool) -> Path:
    """Set the CPU threads and malloc's reuse of freed memory, and give the run's out_dir, refusing to
    start over a run unless resuming."""
    keep_freed_memory()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    out = Path(cfg.out_dir)
    if not resume and (out / "last.pt").exists():
        raise SeqattnError(f"{out / 'last.pt'} exists: pass --resume to continue that run, or choose another out_dir")
    return out


class Trainer:
    """Trains one model; under torchrun there is one Trainer per process and rank 0 writes every file."""

    def __init__(self, cfg: Config, resume: bool = False, log=print) -> None:
        t = validate(cfg).train
        self.out = run_folder(cfg, resume)
        device = resolve_device(t.device)
        self.amp_dtype = autocast_dtype(t.precision, device)
        self.rank, self.world_size, self.device, self.waiting = start_distributed(device, t.collective_timeout)
        self.main = self.rank == 0
        self.cfg, self.log = cfg, log if self.main else (lambda *_: None)
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
        # DDP copies rank 0's initial weights to every rank: the other seeds only vary their dropout
        torch.manual_seed(t.seed + self.rank)
        with self.main_first():  # rank 0 trains vocabularies (and caches features), the other ranks load them
            self.task = build_task(cfg, log=self.log, device=self.device)
        self.src_tok, self.tgt_tok = self.task.src_tok, self.task.tgt_tok
        self.train_data, self.valid_data = self.task.train_data, self.task.valid_data
        self.metric = self.task.metric
        self.model = self.task.build_model().to(self.device)
        self.optimizer = build_optimizer(t, self.model)
        self.batches_per_epoch = len(self.train_data.batches(t.batch_tokens, shuffle=True, seed=t.seed))
        updates_per_epoch = math.ceil(self.batches_per_epoch / (self.world_size * t.accumulate))
        self.scheduler = build_scheduler(t, self.optimizer, self.metric.higher_is_better, updates_per_epoch)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.progress = Progress(metric_name=self.metric.name)
        # sequence tasks validate with the configured search, never with sampling
        self.valid_search = dataclasses.replace(cfg.search, sampling=False, nbest=1)
        if resume:
            self.restore(self.out / "last.pt")
        elif self.main:
            (self.out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
        # updates run through DDP, which syncs gradients; validation, search and checkpoints use the model itself
        self.train_model = self.model if self.world_size == 1 else DistributedDataParallel(
            self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.log(f"model {cfg.model.arch}: {self.n_params:,} parameters on {self.device}, precision {t.precision}")
        if self.world_size > 1:
            self.log(f"data parallel: {self.world_size} processes ({dist.get_backend()}), "
                     f"{self.world_size * t.accumulate} batches per update")

    def open_tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return None
        return SummaryWriter(str(self.out / "tensorboard"))

    # ---- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return training_state(self.cfg, self.model, self.optimizer, self.scheduler, self.scaler, self.progress)

    def restore(self, path: Path) -> None:
        """Continue from a checkpoint. Under torchrun every rank loads it, RNG states included: those
        are rank 0's, so after resuming all ranks draw dropout from the same generator state (one
        process, or several without dropout, resume exactly)."""
        ckpt = checked(load_checkpoint(path, self.device), path)
        saved = config_from_dict(ckpt["config"], source=str(path))
        if saved.model != self.cfg.model:
            raise SeqattnError(
                f"{path}: was trained with a different model section; resume with the same config "
                "or start a new out_dir"
            )
        progress = Progress.from_checkpoint(ckpt["progress"])
        if progress.metric_name not in ("", self.metric.name):
            raise SeqattnError(
                f"{path}: was validated by {progress.metric_name}, this config validates by {self.metric.name}; "
                "resume with the same metric or start a new out_dir"
            )
        restore_training(ckpt, self.model, self.optimizer, self.scheduler, self.scaler)
        self.progress = dataclasses.replace(progress, metric_name=self.metric.name)
        self.log(f"resumed from {path} at step {self.progress.step} (epoch {self.progress.epoch})")

    # ---- across processes (no-ops in one) ------------------------------------------------------
    def all_reduce(self, values: list[float], op: dist.ReduceOp = dist.ReduceOp.SUM) -> list[float]:
        """`values` reduced over the ranks; as they are in one process."""
        if self.world_size == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=op)
        return tensor.tolist()

    def from_main(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank, which waits for it."""
        if self.world_size == 1:
            return obj
        self.wait_for_main()
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wait_for_main(self) -> None:
        """Every rank waits here for rank 0, which may have worked alone for long: the others for up to
        MAIN_ALONE_TIMEOUT, rank 0, which comes last, for train.collective_timeout (so that it too
        notices a process that stopped answering meanwhile). A monitored barrier of the waiting group
        takes each rank's own timeout."""
        if self.world_size > 1:
            mine = timedelta(seconds=self.cfg.train.collective_timeout) if self.main else MAIN_ALONE_TIMEOUT
            dist.monitored_barrier(self.waiting, timeout=mine)

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block (writing files) before the other ranks do (reading them)."""
        if not self.main:
            self.wait_for_main()
        yield
        if self.main:
            self.wait_for_main()

    @contextlib.contextmanager
    def reporting_lost_peers(self) -> Iterator[None]:
        """A collective that failed because another process died or stopped answering -> one
        SeqattnError saying so and how to go on."""
        try:
            yield
        except RuntimeError as err:
            if self.world_size == 1 or not lost_peer(err):
                raise
            last = self.out / "last.pt"
            how = f"with --resume to continue from {last}" if last.exists() else "(no checkpoint was written yet)"
            raise SeqattnError(
                f"rank {self.rank} lost contact with the other processes after step {self.progress.step} "
                f"({first_sentence(err)}): one of them died or stopped answering "
                f"(train.collective_timeout={self.cfg.train.collective_timeout:g}s); start every node again {how}"
            ) from err

    def syncing(self, last: bool) -> contextlib.AbstractContextManager:
        """DDP all-reduces gradients in the backward pass of an update's last batch only."""
        if last or self.world_size == 1:
            return contextlib.nullcontext()
        return self.train_model.no_sync()

    def caught(self, signals: list[int]) -> str | None:
        """The signal any rank caught, so that all stop after the same update; every rank also takes
        the longest elapsed time, so that train.max_minutes stops them together."""
        p = self.progress
        signum, p.elapsed = self.all_reduce([signals[0] if signals else 0, p.elapsed], dist.ReduceOp.MAX)
        return signal.Signals(int(signum)).name if signum else None

    # ---- one update ---------------------------------------------------------------------------
    def update(self, *group: list[int]) -> tuple[float, int]:
        """One optimiser step on the batches of `group`, world_size x accumulate of them (fewer at
        the end of an epoch), of which this rank takes every world_size-th
        -> (summed loss, target tokens) of the whole update. The model's `batch_stats`, summed over
        the update's batches on all ranks, go to its `end_update` after the optimiser step."""
        mine = group[self.rank :: self.world_size]
        # every rank makes as many passes as DDP's gradient sync needs; a spare one counts for nothing
        passes = math.ceil(len(group) / self.world_size)
        batches = [self.train_data.batch(ids, self.tgt_tok).to(self.device)
                   for ids in mine + group[:1] * (passes - len(mine))]
        tokens = int(self.all_reduce([sum(b.ntokens for b in batches[: len(mine)])])[0])
        per_rank = tokens / self.world_size  # DDP averages gradients over the ranks
        self.model.train()
        total, stats = 0.0, {}
        for i, batch in enumerate(batches):
            guide = None if batch.alignment is None else Guide(batch.alignment, self.cfg.train.alignment_weight)
            with self.syncing(last=i == passes - 1):
                with autocast(self.device, self.amp_dtype):
                    out = self.train_model(batch.src, batch.src_mask, batch.tgt_in, need_alpha=guide is not None)
                loss = self.model.loss(out, batch.tgt_out, self.cfg.train.label_smoothing, guide)
                if i >= len(mine):
                    loss = loss * 0
                total += loss.item()
                self.scaler.scale(loss / per_rank).backward()
            for key, value in self.model.batch_stats(out, batch.tgt_out).items():
                stats[key] = stats.get(key, 0.0) + value * (i < len(mine))  # a spare pass counts for nothing
        if self.cfg.train.clip_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
            self.scheduler.step()
        total, *summed = self.all_reduce([total, *(float(v) for v in stats.values())])
        self.model.end_update(dict(zip(stats, summed)))
        return total, tokens

    # ---- validation ---------------------------------------------------------------------------
    @torch.no_grad()  # not inference_mode: under it autocast re-casts the weights at every search step
    def validate(self) -> dict[str, float]:
        """The task's metric (by the configured search for sequence tasks) -> valid_<metric>; the loss
        per token, the task's own or by teacher forcing, and its perplexity."""
        result = self.task.validate(self.model, self.valid_search, self.device, self.amp_dtype)
        (self.out / "valid.hyp").write_text("\n".join(result.outputs) + "\n", encoding="utf-8")
        loss = result.loss if result.loss is not None else self.teacher_forced_loss()
        return {"valid_loss": loss, "valid_ppl": math.exp(min(loss, 100)), f"valid_{self.metric.name}": result.value}

    def teacher_forced_loss(self) -> float:
        """Cross-entropy per target token of the valid split, by teacher forcing."""
        self.model.eval()
        total, tokens = 0.0, 0
        for ids in self.valid_data.batches(self.cfg.train.batch_tokens, shuffle=False):
            batch = self.valid_data.batch(ids, self.tgt_tok).to(self.device)
            with autocast(self.device, self.amp_dtype):
                out = self.model(batch.src, batch.src_mask, batch.tgt_in, need_alpha=False)
            total += self.model.nll(out.logits, batch.tgt_out).item()
            tokens += batch.ntokens
        return total / tokens

    def write_log(self, record: dict[str, Any]) -> None:
        """One record to train.jsonl and TensorBoard, by rank 0."""
        if not self.main:
            return
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        if self.tensorboard is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, record["step"])

    def validate_and_save(self) -> None:
        """Validate, keep the best checkpoint by the task's metric, tell the model, and write last.pt.
        Rank 0 validates and writes while the others wait; every rank takes its metrics, to step the
        LR and stop alike."""
        p, metric = self.progress, self.metric
        metrics = self.from_main(self.validate() if self.main else None)
        p.metric = metrics[f"valid_{metric.name}"]
        improved = metric.better(p.metric, p.best_metric)
        p.best_metric = p.metric if improved else p.best_metric
        p.bad_validations = 0 if improved else p.bad_validations + 1
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(p.metric)
        if self.main and improved:
            save_checkpoint(self.state(), self.out / "best.pt")  # the model as validated
        restarted = self.recommence() if self.model.after_validation(metrics, self.epochs_trained()) else None
        if self.main:
            record = {"step": p.step, "epoch": p.epoch, **metrics, "lr": self.optimizer.param_groups[0]["lr"],
                      "elapsed": p.elapsed}
            self.write_log(record)
            self.log(
                f"step {p.step} valid loss {metrics['valid_loss']:.3f} ppl {metrics['valid_ppl']:.2f} "
                f"{metric.label} {metric.format(p.metric)}{' (best)' if improved else ''}"
                + (f"; the model changed: {restarted} restart" if restarted else "")
            )
            save_checkpoint(self.state(), self.out / "last.pt")
        self.wait_for_main()

    def recommence(self) -> str:
        """Training recommences on a changed model (MemN2N's linear start ended, Sukhbaatar et al. 2015,
        sec. 4.2): what was validated before no longer says how this model does, so the best metric,
        the early-stopping count and a plateau schedule start over, at the configured LR. -> what
        started over, for the log."""
        self.progress.best_metric, self.progress.bad_validations = None, 0
        if not isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            return "best metric and early stopping"
        self.scheduler._reset()  # its best, bad-epoch and cooldown counts
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.train.lr
        return "best metric, early stopping and the plateau schedule (at train.lr)"

    def epochs_trained(self) -> float:
        """Epochs trained so far, the one under way counted by its share of batches done."""
        return self.progress.epoch + self.progress.batch_in_epoch / self.batches_per_epoch

    # ---- the loop -----------------------------------------------------------------------------
    def stop_reason(self) -> str | None:
        """Why training is over, None while it is not (checked on resuming too)."""
        p, t = self.progress, self.cfg.train
        if t.patience and p.bad_validations >= t.patience:
            return f"no {self.metric.label} improvement in train.patience={t.patience} validations"
        if t.max_steps and p.step >= t.max_steps:
            return f"reached train.max_steps={t.max_steps}"
        if t.max_epochs and p.epoch >= t.max_epochs:
            return f"reached train.max_epochs={t.max_epochs}"
        if t.max_minutes and p.elapsed >= 60 * t.max_minutes:
            return f"reached train.max_minutes={t.max_minutes}"
        return None

    def train(self) -> Progress:
        """Train until a stop condition. Ctrl-C or SIGTERM stop after the update under way and
        write last.pt, so `--resume` continues exactly from there. Under torchrun the process group
        is destroyed at the end; losing another process stops training with a SeqattnError."""
        self.jsonl = (self.out / "train.jsonl").open("a", encoding="utf-8") if self.main else None
        self.tensorboard = self.open_tensorboard() if self.main else None
        try:
            with caught_signals() as signals, self.reporting_lost_peers():
                reason = self.run(signals)
        finally:
            if self.jsonl is not None:
                self.jsonl.close()
            if self.tensorboard is not None:
                self.tensorboard.close()
            if self.world_size > 1:
                dist.destroy_process_group()
        self.log(f"training stopped: {reason}; {self.summarise(reason)}")
        return self.progress

    def summarise(self, reason: str) -> str:
        """Write OUT_DIR/summary.json (rank 0) -> the summary as a line of text."""
        p, metric, valid = self.progress, self.metric, len(self.valid_data)
        if self.main:
            summary = {"arch": self.cfg.model.arch, "parameters": self.n_params, "metric": metric.name,
                       f"valid_{metric.name}": p.metric, f"best_valid_{metric.name}": p.best_metric,
                       "valid_size": valid, "step": p.step, "epochs": self.epochs_trained(),
                       "minutes": p.elapsed / 60, "stopped": reason}
            (self.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        return (f"{self.cfg.model.arch} of {self.n_params:,} parameters: valid {metric.label} {metric.format(p.metric)} "
                f"(best {metric.format(p.best_metric)} -> {self.out / 'best.pt'}) on {valid} examples, "
                f"{p.elapsed / 60:.1f} training minutes")

    def run(self, signals: list[int]) -> str:
        """The loop over epochs and updates -> why it stopped."""
        p, t = self.progress, self.cfg.train
        per_update = self.world_size * t.accumulate
        reason = self.stop_reason()
        window_loss, window_tokens, window_start = 0.0, 0, time.perf_counter()
        while reason is None:
            batches = self.train_data.batches(t.batch_tokens, shuffle=True, seed=t.seed + p.epoch)
            bar = tqdm(total=len(batches), initial=p.batch_in_epoch, desc=f"epoch {p.epoch + 1}", leave=False,
                       disable=None if t.progress and self.main else True)
            for start in range(p.batch_in_epoch, len(batches), per_update):
                group = batches[start : start + per_update]
                started = time.perf_counter()
                loss, tokens = self.update(*group)
                p.step, p.batch_in_epoch = p.step + 1, start + len(group)
                if p.batch_in_epoch == len(batches):
                    p.epoch, p.batch_in_epoch = p.epoch + 1, 0
                p.elapsed += time.perf_counter() - started
                window_loss, window_tokens = window_loss + loss, window_tokens + tokens
                bar.update(len(group))
                if p.step % t.log_every == 0:
                    seconds = time.perf_counter() - window_start
                    record = {"step": p.step, "epoch": p.epoch, "train_loss": window_loss / window_tokens,
                              "lr": self.optimizer.param_groups[0]["lr"], "tokens_per_s": window_tokens / seconds}
                    self.write_log(record)
                    bar.set_postfix(loss=f"{record['train_loss']:.3f}", tok_s=f"{record['tokens_per_s']:.0f}")
                    window_loss, window_tokens, window_start = 0.0, 0, time.perf_counter()
                caught = self.caught(signals)
                if caught:
                    if self.main:
                        save_checkpoint(self.state(), self.out / "last.pt")
                    bar.close()
                    return f"{caught} at step {p.step}, saved {self.out / 'last.pt'}; continue with --resume"
                reason = self.stop_reason()
                due = p.step % t.valid_every == 0 if t.valid_every else p.batch_in_epoch == 0
                if due or reason is not None:
                    started = time.perf_counter()
                    self.validate_and_save()
                    p.elapsed += time.perf_counter() - started
                    reason = reason or self.stop_reason()
                    window_loss, window_tokens, window_start = 0.0, 0, time.perf_counter()
                if reason is not None:
                    break
            bar.close()
        return reason
