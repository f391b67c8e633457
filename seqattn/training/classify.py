"""The backbone check: a CNN backbone trained from scratch as a CIFAR-10 classifier, the way Hu et
al. (2018, SENet) and Wang et al. (2017, Residual Attention Network) test theirs on CIFAR-10.

SGD with Nesterov momentum 0.9 and weight decay, cross-entropy, and a cosine learning-rate decay
planned over classify.epochs x batches per epoch, so that a run does not depend on the machine's
speed; train.max_minutes is a budget that stops a run early (before its decay is over: the summary
says so). Test accuracy after every epoch, best (by test accuracy) and last checkpoints, exact
resumption (also from a stop in mid-epoch), JSONL logs, CUDA + AMP.

Images are normalised by the CIFAR-10 channel statistics (the backbones learn from scratch here)
and read by the main process (no loader workers): the augmentation then draws from the global
torch generator, which every checkpoint saves, so `--resume` continues exactly.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import datasets, transforms

from seqattn.config import ClassifyConfig, Config, config_from_dict, data_root
from seqattn.errors import SeqattnError
from seqattn.modules.backbones import build_classifier
from seqattn.precision import autocast, autocast_dtype
from seqattn.training.checkpoint import load_checkpoint, restore_training, save_checkpoint, training_state
from seqattn.training.trainer import caught_signals, resolve_device, run_folder

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # per-channel statistics of the 50,000 training images
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
DEFAULT_CACHE = Path("~/.cache/seqattn/cifar10")
MARKER = ".seqattn-unpacked"  # written last inside the unpacked folder: the archive's name and size


# ---- data ---------------------------------------------------------------------------------------
def archive_path(cfg: ClassifyConfig) -> Path:
    """classify.archive, absolute or under the data root ($SEQATTN_DATA_ROOT, else ../shared/data)."""
    path = data_root(None) / cfg.archive
    if not path.is_file():
        raise SeqattnError(
            f"classify.archive: {path} not found; set classify.archive to the CIFAR-10 JPEG .tar.gz "
            "(absolute, or under the data root: $SEQATTN_DATA_ROOT, else ../shared/data)"
        )
    return path


def unpack_archive(archive: Path, cache_dir: Path) -> Path:
    """Unpack `archive` into `cache_dir` once -> `cache_dir`. It is extracted into a temporary
    sibling folder that is then renamed, so `cache_dir` exists only whole; later calls reuse it."""
    stamp = f"{archive.name} {archive.stat().st_size}\n"
    if cache_dir.exists():
        marker = cache_dir / MARKER
        if not marker.is_file() or marker.read_text(encoding="utf-8") != stamp:
            raise SeqattnError(
                f"classify.cache_dir: {cache_dir} does not hold {archive} unpacked by seqattn; "
                "delete that folder or choose another classify.cache_dir"
            )
        return cache_dir
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.", dir=cache_dir.parent))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        (tmp / MARKER).write_text(stamp, encoding="utf-8")
        os.rename(tmp, cache_dir)
    except tarfile.TarError as err:
        raise SeqattnError(f"classify.archive: {archive} is not a readable .tar.gz ({err})") from None
    except OSError:
        if not (cache_dir / MARKER).is_file():  # else another process unpacked it first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cache_dir


def cifar_transform(size: int, augment: bool) -> transforms.Compose:
    """JPEG -> normalised tensor [3, size, size]; `augment`: random crop of the image padded by
    size/8 pixels (4 at 32x32) and horizontal flips."""
    steps: list[Any] = [] if size == 32 else [transforms.Resize(size)]
    if augment:
        steps += [transforms.RandomCrop(size, padding=size // 8), transforms.RandomHorizontalFlip()]
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)])


def seeded_subset(dataset: Dataset, n: int, seed: int) -> Dataset:
    """The first `n` images of a seeded shuffle of `dataset` (all of it when `n` is 0)."""
    if n == 0 or n >= len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, order[:n].tolist())


def load_cifar10(cfg: Config) -> tuple[Dataset, Dataset, list[str]]:
    """(training images, test images, class names) from the unpacked archive, subsets as configured."""
    c = cfg.classify
    archive = archive_path(c)
    root = unpack_archive(archive, Path(c.cache_dir or DEFAULT_CACHE).expanduser())
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise SeqattnError(f"classify.archive: {archive} has no {split}/ folder; "
                               "expected train/<class>/*.jpg and test/<class>/*.jpg")
    size = cfg.backbone.image_size
    train = datasets.ImageFolder(str(root / "train"), cifar_transform(size, c.augment))
    test = datasets.ImageFolder(str(root / "test"), cifar_transform(size, False))
    if train.classes != test.classes:
        raise SeqattnError(f"classify.archive: {archive} has classes {train.classes} in train/ "
                           f"but {test.classes} in test/")
    seed = cfg.train.seed
    return seeded_subset(train, c.train_images, seed), seeded_subset(test, c.test_images, seed), train.classes


# ---- training -----------------------------------------------------------------------------------
@torch.inference_mode()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, amp_dtype: torch.dtype | None) -> float:
    """Top-1 accuracy: the fraction of images whose highest logit is their class."""
    model.eval()
    correct, total = 0, 0
    for images, labels in loader:
        with autocast(device, amp_dtype):
            logits = model(images.to(device))  # [B, classes]
        correct += int((logits.argmax(-1).cpu() == labels).sum())
        total += len(labels)
    return correct / total


@dataclass
class ClassifyProgress:
    """Where training stands; saved in every checkpoint so --resume continues exactly."""

    step: int = 0
    epoch: int = 0  # finished epochs
    batch_in_epoch: int = 0  # batches of the epoch under way already trained on
    accuracy: float = -1.0  # test accuracy at the last evaluation
    best_accuracy: float = -1.0
    elapsed: float = 0.0  # seconds of training and evaluation so far, across resumptions


class ClassifierTrainer:
    """Trains cfg.backbone + global pooling + Linear on CIFAR-10 (cfg.classify) into cfg.out_dir."""

    def __init__(self, cfg: Config, resume: bool = False, log=print) -> None:
        c, t = cfg.classify, cfg.train
        for name in ("batch_size", "epochs"):
            if getattr(c, name) < 1:
                raise SeqattnError(f"classify.{name}: {getattr(c, name)} is not a positive number")
        for name in ("train_images", "test_images"):
            if getattr(c, name) < 0:
                raise SeqattnError(f"classify.{name}: {getattr(c, name)} is negative; 0 takes all images")
        if cfg.backbone.freeze and cfg.backbone.pretrained == "none":
            raise SeqattnError("backbone.freeze=true with backbone.pretrained=none would train the last layer only, "
                               "on random features; set backbone.freeze=false")
        self.out = run_folder(cfg, resume)
        self.cfg, self.log = cfg, log
        self.device = resolve_device(t.device)
        self.amp_dtype = autocast_dtype(t.precision, self.device)
        torch.manual_seed(t.seed)
        self.train_data, self.test_data, classes = load_cifar10(cfg)
        self.model = build_classifier(cfg.backbone, len(classes)).to(self.device)
        self.optimizer = torch.optim.SGD([p for p in self.model.parameters() if p.requires_grad], lr=c.lr,
                                         momentum=0.9, nesterov=True, weight_decay=c.weight_decay)
        self.batches_per_epoch = math.ceil(len(self.train_data) / c.batch_size)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, c.epochs * self.batches_per_epoch)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.test_loader = self.loader(self.test_data, batch_size=c.batch_size)
        self.progress = ClassifyProgress()
        if resume:
            self.restore(self.out / "last.pt")
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.log(f"classify {cfg.backbone.name}: {self.n_params:,} parameters on {self.device}, precision "
                 f"{t.precision}; {len(self.train_data)} training and {len(self.test_data)} test images, "
                 f"{self.batches_per_epoch} batches per epoch")

    def loader(self, data: Dataset, **kwargs: Any) -> DataLoader:
        """Images read in this process; the loader's own seed comes from a private generator, so that
        creating one never moves the global generator that the augmentation draws from."""
        return DataLoader(data, num_workers=0, generator=torch.Generator(), pin_memory=self.device.type == "cuda",
                          **kwargs)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The training batches of `epoch`: a shuffle seeded by train.seed + epoch, cut in order."""
        n, size = len(self.train_data), self.cfg.classify.batch_size
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.cfg.train.seed + epoch)).tolist()
        return [order[i : i + size] for i in range(0, n, size)]

    # ---- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return training_state(self.cfg, self.model, self.optimizer, self.scheduler, self.scaler, self.progress)

    def restore(self, path: Path) -> None:
        ckpt = load_checkpoint(path, self.device)
        saved = config_from_dict(ckpt["config"], source=str(path))
        ours = self.cfg
        if (saved.backbone, saved.classify, saved.train.seed) != (ours.backbone, ours.classify, ours.train.seed):
            raise SeqattnError(f"{path}: was trained with different backbone or classify sections or train.seed; "
                               "resume with the same config or start a new out_dir")
        restore_training(ckpt, self.model, self.optimizer, self.scheduler, self.scaler)
        self.progress = ClassifyProgress(**ckpt["progress"])
        self.log(f"resumed from {path} at step {self.progress.step} (epoch {self.progress.epoch})")

    # ---- the loop -----------------------------------------------------------------------------
    def update(self, images: Tensor, labels: Tensor) -> tuple[float, int]:
        """One SGD step on a batch -> (summed cross-entropy, correctly classified images)."""
        self.model.train()
        with autocast(self.device, self.amp_dtype):
            logits = self.model(images)  # [B, classes]
        loss = F.cross_entropy(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.item() * len(labels), int((logits.argmax(-1) == labels).sum())

    def stop_reason(self, signals: list[int]) -> str | None:
        p = self.progress
        if signals:
            name = signal.Signals(signals[0]).name
            return f"{name} at step {p.step}, saved {self.out / 'last.pt'}; continue with --resume"
        if p.epoch >= self.cfg.classify.epochs:
            return f"reached classify.epochs={self.cfg.classify.epochs}"
        if self.cfg.train.max_minutes and p.elapsed >= 60 * self.cfg.train.max_minutes:
            return (f"reached train.max_minutes={self.cfg.train.max_minutes} in epoch {p.epoch + 1} of "
                    f"{self.cfg.classify.epochs}, before the cosine decay ended")
        return None

    def tick(self) -> None:
        """Add the time since the last tick to progress.elapsed."""
        now = time.perf_counter()
        self.progress.elapsed += now - self.clock
        self.clock = now

    def write_log(self, record: dict[str, Any]) -> None:
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()

    def evaluate_and_save(self) -> None:
        """Test accuracy into the log and the progress; last.pt always, best.pt when it improved."""
        p = self.progress
        p.accuracy = evaluate(self.model, self.test_loader, self.device, self.amp_dtype)
        self.tick()
        improved = p.accuracy > p.best_accuracy
        p.best_accuracy = max(p.best_accuracy, p.accuracy)
        self.write_log({"step": p.step, "epoch": p.epoch + p.batch_in_epoch / self.batches_per_epoch,
                        "test_accuracy": p.accuracy, "lr": self.optimizer.param_groups[0]["lr"], "elapsed": p.elapsed})
        self.log(f"epoch {p.epoch} step {p.step}: test accuracy {p.accuracy:.2%}{' (best)' if improved else ''}")
        state = self.state()
        if improved:
            save_checkpoint(state, self.out / "best.pt")
        save_checkpoint(state, self.out / "last.pt")

    def train(self) -> ClassifyProgress:
        """Train until classify.epochs or train.max_minutes, then print a one-line summary. Ctrl-C or
        SIGTERM stop after the update under way and write last.pt, for `--resume`."""
        p, name = self.progress, self.cfg.backbone.name
        with (self.out / "classify.jsonl").open("a", encoding="utf-8") as self.jsonl:
            with caught_signals() as signals:
                reason = self.run(signals)
            self.write_log({"summary": True, "backbone": name, "parameters": self.n_params, "test_accuracy": p.accuracy,
                            "best_test_accuracy": p.best_accuracy, "test_images": len(self.test_data),
                            "epochs": p.epoch + p.batch_in_epoch / self.batches_per_epoch,
                            "minutes": p.elapsed / 60, "stopped": reason})
        self.log(f"classify {name}: {self.n_params:,} parameters, test accuracy {p.accuracy:.2%} "
                 f"(best {p.best_accuracy:.2%}) on {len(self.test_data)} images, {p.elapsed / 60:.1f} training "
                 f"minutes; {reason}")
        return p

    def run(self, signals: list[int]) -> str:
        """The loop over epochs and updates, evaluating at each epoch's end and at a stop -> why it stopped."""
        p, log_every = self.progress, self.cfg.train.log_every
        reason = self.stop_reason(signals)
        window = [0.0, 0, 0]  # summed loss, correct images, images since the last log record
        self.clock = window_start = time.perf_counter()
        while reason is None:
            batches = self.epoch_batches(p.epoch)
            for images, labels in self.loader(self.train_data, batch_sampler=batches[p.batch_in_epoch :]):
                loss, correct = self.update(images.to(self.device, non_blocking=True),
                                            labels.to(self.device, non_blocking=True))
                window = [window[0] + loss, window[1] + correct, window[2] + len(labels)]
                p.step, p.batch_in_epoch = p.step + 1, p.batch_in_epoch + 1
                ended = p.batch_in_epoch == len(batches)
                if ended:
                    p.epoch, p.batch_in_epoch = p.epoch + 1, 0
                if p.step % log_every == 0:
                    now = time.perf_counter()
                    self.write_log({"step": p.step, "train_loss": window[0] / window[2],
                                    "train_accuracy": window[1] / window[2], "lr": self.optimizer.param_groups[0]["lr"],
                                    "images_per_s": window[2] / (now - window_start)})
                    window, window_start = [0.0, 0, 0], now
                self.tick()
                reason = self.stop_reason(signals)
                if ended or reason is not None:
                    started = time.perf_counter()
                    self.evaluate_and_save()
                    window_start += time.perf_counter() - started  # images_per_s counts training only
                if reason is not None:
                    break
        return reason
