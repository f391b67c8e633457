"""Speed of a memory-network recipe on bAbI: training questions per second (the real
`Trainer.update`), answering questions per second with greedy search and beam 5 (the shared search
through `Predictor`), and peak memory.

    python benchmarks/qa_speed.py recipes/sukhbaatar2015/memn2n.yaml --steps 200 --questions 1000 \
        --checkpoint runs/sukhbaatar2015/task1/seed1/best.pt

Without --checkpoint the model is untrained (its answers still stop at the recipe's max_len_b).
The run works in a temporary out_dir unless an `out_dir=...` override is given.
"""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Optional

import typer
from nmt_speed import JSON_OUT, report, Row, clock, machine, memory, recipe, timed_updates

from cli import CONFIG, OVERRIDES, log, user_errors
from seqattn.data.babi import BabiExample
from seqattn.errors import SeqattnError
from seqattn.evaluation.qa import accuracy_by_task
from seqattn.inference import Predictor
from seqattn.models import Seq2Seq
from seqattn.tasks import Task
from seqattn.training import Trainer, load_model


def train_speed(trainer: Trainer, steps: int, warmup: int) -> list[Row]:
    """Questions per second over `steps` updates after `warmup` untimed ones."""
    t = trainer.cfg.train
    batches = itertools.cycle(trainer.train_data.batches(t.batch_tokens, shuffle=True, seed=t.seed))
    timed_updates(trainer, batches, warmup)
    _, questions, seconds = timed_updates(trainer, batches, steps)
    return [("train_questions_per_s", questions / seconds, "questions/s"), ("train_updates", steps, "timed")]


def answer_speed(model: Seq2Seq, task: Task, trainer: Trainer, examples: list[BabiExample]) -> list[Row]:
    """Questions answered per second and exact-match accuracy, greedy and beam 5."""
    rows: list[Row] = [("answer_questions", len(examples), "valid questions")]
    for beam in (1, 5):
        search = dataclasses.replace(trainer.cfg.search, beam_size=beam, nbest=1, sampling=False)
        predictor = Predictor(task, model, search, trainer.device, amp_dtype=trainer.amp_dtype)
        predictor.predict(examples[:2])  # warm-up
        start = clock(trainer.device)
        answers = [predictor.text(nbest[0]) for nbest in predictor.predict(examples)]
        seconds = clock(trainer.device) - start
        accuracy = accuracy_by_task(examples, answers)
        rows += [(f"beam{beam}_questions_per_s", len(examples) / seconds, "questions/s"),
                 (f"beam{beam}_accuracy", sum(accuracy.values()) / len(accuracy), "% exact match (mean over tasks)")]
    return rows


def main(
    config: Path = CONFIG,
    overrides: Optional[list[str]] = OVERRIDES,
    steps: int = typer.Option(200, min=1, help="Timed training updates."),
    warmup: int = typer.Option(10, min=0, help="Untimed training updates before them."),
    questions: int = typer.Option(1000, min=1, help="First valid questions answered per beam size."),
    checkpoint: Optional[Path] = typer.Option(None, help="Answer with this best.pt / last.pt of the same recipe."),
    json_out: Optional[Path] = JSON_OUT,
) -> None:
    """Print the machine, model size, training and answering throughput and peak memory of a recipe."""
    with recipe(config, overrides, "qa_speed-") as cfg:
        trainer = Trainer(cfg, log=log)
        model, task = trainer.model, trainer.task
        if checkpoint is not None:
            model, saved, task = load_model(checkpoint, trainer.device)
            if saved.model != cfg.model:
                raise SeqattnError(f"{checkpoint}: its model section differs from {config}; pass its recipe")
        n_params = sum(p.numel() for p in trainer.model.parameters())
        rows = machine(trainer) + [("parameters", n_params, "")]
        rows += train_speed(trainer, steps, warmup)
        rows += answer_speed(model, task, trainer, trainer.valid_data.examples[:questions])
        rows += memory(trainer.device)
        rows.append(("checkpoint", str(checkpoint) if checkpoint else None, ""))
    report(rows, json_out)


if __name__ == "__main__":
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(user_errors(main))
    app()
