"""Speed of a captioning recipe: training and beam captioning in images per second, with the frozen
CNN's cached annotation grids and without them (the CNN run on every image), and peak memory.

    python benchmarks/caption_speed.py recipes/xu2015/soft.yaml --steps 20 --images 64 --json speed.json

Training runs the real `Trainer.update` step (one image-caption pair per example); captioning runs
`Captioner` with beam 3 over the first valid images. Without --checkpoint the model is untrained.
The run works in a temporary out_dir unless an `out_dir=...` override is given; its features are
cached there, so the first run also times the CNN over every image once.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path
from typing import Optional

import typer
from nmt_speed import JSON_OUT, report, UNTRAINED, Row, clock, machine, memory, recipe, timed_updates

from cli import CONFIG, OVERRIDES, log, user_errors
from seqattn.inference import Predictor
from seqattn.errors import SeqattnError
from seqattn.training import Trainer, load_model


def train_speed(trainer: Trainer, steps: int, warmup: int, label: str) -> list[Row]:
    """Image-caption pairs per second over `steps` timed updates of trainer.train_data."""
    t = trainer.cfg.train
    batches = itertools.cycle(trainer.train_data.batches(t.batch_tokens, shuffle=True, seed=t.seed))
    timed_updates(trainer, batches, warmup)
    _, pairs, seconds = timed_updates(trainer, batches, steps)
    return [(f"train_{label}_images_per_s", pairs / seconds, "image-caption pairs/s")]


def caption_speed(captioner: Predictor, trainer: Trainer, images: int) -> list[Row]:
    """Beam captioning of the first valid images, from cached grids and from the image files."""
    valid = trainer.valid_data
    grids, paths = list(valid.grids[:images]), valid.split.images[:images]
    captioner.predict(grids[:2])  # warm-up
    rows = []
    for label, items in (("cached", grids), ("uncached", paths)):
        start = clock(trainer.device)
        captioner.predict(items)
        rows.append((f"beam{captioner.cfg.beam_size}_{label}_images_per_s",
                     len(paths) / (clock(trainer.device) - start), "images/s"))
    return rows


def main(
    config: Path = CONFIG,
    overrides: Optional[list[str]] = OVERRIDES,
    steps: int = typer.Option(20, min=1, help="Timed training updates, with and without cached features each."),
    warmup: int = typer.Option(2, min=0, help="Untimed training updates before them."),
    images: int = typer.Option(64, min=1, help="First valid images captioned (each way)."),
    beam_size: int = typer.Option(3, min=1, help="Beam width of the captioning figures."),
    checkpoint: Optional[Path] = typer.Option(None, help="Caption with this best.pt / last.pt of the same recipe."),
    json_out: Optional[Path] = JSON_OUT,
) -> None:
    """Print the machine, model size, training and captioning images/s and peak memory of a recipe."""
    with recipe(config, overrides, "caption_speed-") as cfg:
        if not cfg.backbone.freeze:
            raise SeqattnError("caption_speed: compares cached and uncached features of a frozen CNN; "
                               "set backbone.freeze=true")
        start = time.perf_counter()
        trainer = Trainer(cfg, log=log)
        setup = time.perf_counter() - start
        model = trainer.model
        if checkpoint is not None:
            model, saved, _ = load_model(checkpoint, trainer.device)
            same_backbone = dataclasses.replace(saved.backbone, cache_dir=cfg.backbone.cache_dir) == cfg.backbone
            if saved.model != cfg.model or not same_backbone:
                raise SeqattnError(f"{checkpoint}: its model or backbone section differs from {config}; pass its recipe")
        n_params = sum(p.numel() for p in trainer.model.parameters())
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        rows = machine(trainer) + [("parameters", n_params, ""), ("trainable_parameters", trainable, ""),
                                   ("setup_seconds", setup, "s (reading, vocabulary, CNN over uncached images)")]
        rows += train_speed(trainer, steps, warmup, "cached")
        task = trainer.task
        trainer.train_data = task.pairs(task.train_data.split, None, task.train_data.L, train_mode=True)
        rows += train_speed(trainer, steps, warmup, "uncached")
        search = dataclasses.replace(cfg.search, beam_size=beam_size, nbest=1, sampling=False)
        rows += caption_speed(Predictor(trainer.task, model, search, trainer.device), trainer, images)
        rows += memory(trainer.device)
        rows.append(("checkpoint", str(checkpoint) if checkpoint else None, ""))
        if checkpoint is None:
            rows.append(("note", UNTRAINED, ""))
    report(rows, json_out, 32)


if __name__ == "__main__":
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(user_errors(main))
    app()
