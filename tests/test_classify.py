"""The CIFAR-10 backbone check (the classification task on the shared trainer) on a tiny archive cut
from the real one: unpacking once, accuracy on the test subset, the cosine schedule, exact
resumption, one-line errors, and the command line."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from cli import app
from conftest import real_data
from seqattn.config import BackboneConfig, data_root, load_config
from seqattn.errors import SeqattnError
from seqattn.data.cifar import CIFAR10_MEAN, CIFAR10_STD, MARKER, load_cifar10, unpack_archive
from seqattn.models import classifier
from seqattn.modules.backbones import Backbone, Classifier
from seqattn.tasks.classification import ClassificationTask
from seqattn.training import Trainer, load_model

REAL_ARCHIVE = data_root(None) / "cifar10" / "cifar10-jpg.tar.gz"
REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes" / "hu2018_senet" / "resnet.yaml"
PER_CLASS = {"train": 8, "test": 3}  # images per class in the tiny archive: 80 training, 30 test


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 8 training and 3 test JPEGs of each class of the real archive, in its layout.
    (Unpacking all 60,000 files takes about 20 s, too long for a test.)"""
    real_data(REAL_ARCHIVE)
    path = tmp_path_factory.mktemp("cifar") / "tiny.tar.gz"
    taken: Counter = Counter()
    with tarfile.open(REAL_ARCHIVE, "r|gz") as source, tarfile.open(path, "w:gz") as tiny:
        for member in source:
            if member.isfile():
                split, label, _ = member.name.split("/")
                if taken[split, label] < PER_CLASS[split]:
                    taken[split, label] += 1
                    tiny.addfile(member, source.extractfile(member))
    assert len(taken) == 20 and sum(taken.values()) == 110
    return path


def tiny_backbone(cfg: BackboneConfig) -> Backbone:
    """A stand-in for the backbones: one strided conv with batch norm (the classifier pools it, then Linear)."""
    return Backbone(nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU()), 8)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classifier, "build_backbone", tiny_backbone)


def tiny_config(archive: Path, tmp_path: Path, *overrides: str):
    return load_config(RECIPE, [
        f"out_dir={tmp_path / 'run'}", f"classify.archive={archive}", f"classify.cache_dir={tmp_path / 'cache'}",
        "classify.train_images=64", "classify.test_images=20", "classify.batch_size=16", "train.max_epochs=1",
        "train.log_every=2", "train.max_minutes=0", "train.threads=0", *overrides,
    ])


def quiet(*_: object) -> None:
    pass


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines()]


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def test_archive_is_unpacked_once(tiny_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache" / "cifar10"
    assert unpack_archive(tiny_archive, cache) == cache
    assert sorted(p.name for p in (cache / "train").iterdir()) == sorted(p.name for p in (cache / "test").iterdir())
    assert len(list(cache.glob("train/*/*.jpg"))) == 80 and len(list(cache.glob("test/*/*.jpg"))) == 30
    assert [p.name for p in cache.parent.iterdir()] == ["cifar10"]  # no temporary folder left behind
    stamp = (cache / MARKER).stat().st_mtime_ns

    def no_extraction(*_args, **_kwargs):
        raise AssertionError("the archive was opened again")

    monkeypatch.setattr(tarfile, "open", no_extraction)
    assert unpack_archive(tiny_archive, cache) == cache
    assert (cache / MARKER).stat().st_mtime_ns == stamp
    other = tmp_path / "other.tar.gz"
    other.write_bytes(b"not the same archive")
    with pytest.raises(SeqattnError, match=f"classify.cache_dir: {cache} does not hold {other}"):
        unpack_archive(other, cache)


def test_subsets_are_seeded_and_sized(tiny_archive: Path, tmp_path: Path) -> None:
    train, test, classes = load_cifar10(tiny_config(tiny_archive, tmp_path))
    assert len(classes) == 10 and classes[0] == "airplane" and (len(train), len(test)) == (64, 20)
    again, _, _ = load_cifar10(tiny_config(tiny_archive, tmp_path))
    other, _, _ = load_cifar10(tiny_config(tiny_archive, tmp_path, "train.seed=7"))
    assert train.indices == again.indices != other.indices
    image, label = test[0]
    path, expected_label = test.dataset.samples[test.indices[0]]
    pixels = torch.tensor(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1) / 255  # [3, 32, 32]
    mean, std = torch.tensor(CIFAR10_MEAN)[:, None, None], torch.tensor(CIFAR10_STD)[:, None, None]
    assert label == expected_label and torch.allclose(image * std + mean, pixels, atol=1e-6)  # test: no augmentation


def test_accuracy_is_measured_on_the_test_subset(tiny_archive: Path, tmp_path: Path, tiny: None) -> None:
    lines: list[str] = []
    progress = Trainer(tiny_config(tiny_archive, tmp_path), log=lines.append).train()
    out = tmp_path / "run"
    # recompute from the saved weights: the fraction of the 20 test images whose top logit is their class
    cfg = tiny_config(tiny_archive, tmp_path)
    _, test, _ = load_cifar10(cfg)
    model = Classifier(tiny_backbone(cfg.backbone), 10)
    model.load_state_dict(torch.load(out / "last.pt", weights_only=True)["model"])
    model.eval()
    with torch.no_grad():
        correct = sum(int(model(image[None]).argmax() == label) for image, label in test)
    assert progress.metric == correct / 20 == progress.best_metric
    loaded, _, task = load_model(out / "best.pt")
    assert task.classes[0] == "airplane" and not loaded.training
    assert (out / "best.pt").is_file() and progress.step == 4 and progress.epoch == 1
    logged = records(out)
    assert [r["step"] for r in logged if "train_loss" in r] == [2, 4]
    assert [r["valid_accuracy"] for r in logged if "valid_accuracy" in r] == [progress.metric]  # once: epoch 1's end
    s = summary(out)
    assert s["parameters"] == sum(p.numel() for p in model.parameters()) == 330 and s["valid_accuracy"] == progress.metric
    assert s["stopped"] == "reached train.max_epochs=1" and s["valid_size"] == 20 and s["epochs"] == 1
    assert lines[-1].startswith(f"training stopped: reached train.max_epochs=1; classifier of 330 parameters: "
                                f"valid accuracy {100 * correct / 20:.2f}%")


def test_resumed_training_equals_uninterrupted(tiny_archive: Path, tmp_path: Path, tiny: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during the validation after epoch 1 stops after the next update (mid-epoch 2);
    --resume then starts at that step and ends with the weights of an uninterrupted 2-epoch run."""
    whole = Trainer(tiny_config(tiny_archive, tmp_path / "whole", "train.max_epochs=2"), log=quiet)
    whole.train()
    validate = ClassificationTask.validate

    def interrupted(*args):
        signal.raise_signal(signal.SIGINT)
        return validate(*args)

    monkeypatch.setattr(ClassificationTask, "validate", interrupted)
    split = tiny_config(tiny_archive, tmp_path / "split", "train.max_epochs=2")
    first = Trainer(split, log=quiet)
    first.train()
    assert (first.progress.epoch, first.progress.batch_in_epoch, first.progress.step) == (1, 1, 5)
    assert summary(tmp_path / "split" / "run")["stopped"].startswith("SIGINT at step 5")
    monkeypatch.setattr(ClassificationTask, "validate", validate)
    resumed = Trainer(split, resume=True, log=quiet)
    assert resumed.progress.step == 5
    resumed.train()
    assert resumed.progress.step == whole.progress.step == 8 and resumed.progress.metric == whole.progress.metric
    weights = resumed.model.state_dict()
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    a_state, b_state = whole.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(a_state[k]["momentum_buffer"], b_state[k]["momentum_buffer"]) for k in a_state)
    # cosine decay over the 8 planned updates: half the LR after epoch 1, zero at the end
    lrs = {r["step"]: r["lr"] for r in records(tmp_path / "whole" / "run") if "valid_accuracy" in r}
    assert lrs[4] == pytest.approx(0.5 * whole.cfg.train.lr) and lrs[8] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("override,message", [
    ("classify.archive=missing/cifar.tar.gz", "classify.archive: {data}/missing/cifar.tar.gz not found"),
    ("backbone.freeze=true", "backbone.freeze=true with backbone.pretrained=none"),
    ("train.max_epochs=0", "train.schedule=cosine: plans its decay over train.max_epochs"),
    ("classify.batch_size=0", "classify.batch_size: 0 is not a positive number"),
])
def test_bad_options_name_themselves(override: str, message: str, tiny_archive: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQATTN_DATA_ROOT", str(tmp_path / "data"))
    with pytest.raises(SeqattnError, match=message.format(data=tmp_path / "data")):
        Trainer(tiny_config(tiny_archive, tmp_path, override), log=quiet)


def test_command_line(tiny_archive: Path, tmp_path: Path) -> None:
    """`seqattn train` of a classifier recipe with the real ResNet-18; a second run needs --resume; errors
    are one line; the recipes' table reads the run."""
    runner = CliRunner()
    args = ["train", str(RECIPE), f"out_dir={tmp_path / 'run'}", f"classify.archive={tiny_archive}",
            f"classify.cache_dir={tmp_path / 'cache'}", "classify.train_images=16", "classify.test_images=10",
            "classify.batch_size=8", "train.max_epochs=1", "train.threads=0", "train.progress=false"]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert "classifier of 11," in line and "valid accuracy" in line and "training minutes" in line
    again = runner.invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 2 and "last.pt exists: pass --resume" in again.stderr
    resumed = runner.invoke(app, [*args, "--resume"], catch_exceptions=False)
    assert resumed.exit_code == 0 and "reached train.max_epochs=1" in resumed.stderr
    table = subprocess.run([sys.executable, str(REPO / "recipes" / "classify_table.py"), str(tmp_path / "run")],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    s = summary(tmp_path / "run")
    assert table[-1] == f"| run | resnet18 | {100 * s['valid_accuracy']:.2f}% | 10 | 11.18 M | 1.00 | {s['minutes']:.1f} |"
    missing = runner.invoke(app, [*args, f"out_dir={tmp_path / 'other'}", "classify.archive=/nowhere/cifar.tar.gz"],
                            catch_exceptions=False)
    assert missing.exit_code == 2 and "error: classify.archive: /nowhere/cifar.tar.gz not found" in missing.stderr
    assert "Traceback" not in missing.output and len(missing.stderr.strip().splitlines()) == 1
