"""bAbI question answering (Weston et al. 2015): the official text format, the per-task and joint
reading of the 20 tasks, the validation split, the word vocabulary and batching for memory networks.

Format: a story is numbered lines, the numbers restarting at 1 for a new story; a statement reads
`N text.`, a question `N question?<TAB>answer<TAB>supporting ids`. Each question is an example whose
memories are the story's statements before it (questions are not memories), the last `memory_size`
of them. Answers like `apple,football` or `n,w` are sequences of words.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seqattn.config import BabiConfig
from seqattn.data.batching import Batch, pad
from seqattn.data.vocab import WordVocab, words
from seqattn.errors import SeqattnError

TASKS = tuple(range(1, 21))


@dataclass
class BabiExample:
    """One question with its story window."""

    task: int  # bAbI task number 1..20
    memory: list[list[str]]  # the last memory_size statements before the question, oldest first, as words
    lines: list[int]  # the original line number of each memory
    question: list[str]
    answer: list[str]  # "apple,football" -> ["apple", "football"]
    support: list[int]  # memory slots of the supporting facts; facts outside the window are dropped


def read_babi(path: Path, task: int, memory_size: int = 50, answered: bool = True) -> list[BabiExample]:
    """All questions of one bAbI file (see parse_babi)."""
    path = Path(path)
    return parse_babi(path.read_text(encoding="utf-8").splitlines(), path.name, task, memory_size, answered)


def parse_babi(
    lines: list[str], name: str, task: int, memory_size: int = 50, answered: bool = True,
) -> list[BabiExample]:
    """All questions of the bAbI-format `lines` of file `name`; a malformed line raises a one-line
    SeqattnError naming it. With `answered` False a question line may stop after its `?` (a story to
    answer: its answer and supporting facts are then empty)."""
    if memory_size < 1:
        raise SeqattnError(f"babi.memory_size: at least 1, got {memory_size}")
    examples: list[BabiExample] = []
    story: list[tuple[int, list[str]]] = []  # (line number, words) of the statements so far
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{name} line {n}"
        number, _, text = raw.strip().partition(" ")
        if not number.isdigit():
            raise SeqattnError(f"{where}: no leading line number; each line reads `N text` (bAbI format)")
        if int(number) == 1:
            story = []
        if "?" not in text and "\t" not in text:
            story.append((int(number), words(text)))
            continue
        fields = text.split("\t")
        if not answered and len(fields) == 1:
            fields += ["", ""]
        if len(fields) < 3:
            raise SeqattnError(f"{where}: question without a tab-separated answer and supporting facts; "
                               "write `N question?<TAB>answer<TAB>supporting line numbers`")
        ids = fields[2].split()
        if not all(i.isdigit() for i in ids):
            raise SeqattnError(f"{where}: supporting fact {fields[2].strip()!r} is not a list of line numbers")
        window = story[-memory_size:]
        slot = {line: i for i, (line, _) in enumerate(window)}
        examples.append(BabiExample(
            task=task, memory=[w for _, w in window], lines=[line for line, _ in window],
            question=words(fields[0]), answer=[w for part in fields[1].split(",") for w in words(part)],
            support=[slot[int(i)] for i in ids if int(i) in slot],
        ))
    return examples


def babi_task_number(path: Path) -> int:
    """The task number in a bAbI file name (qa{N}_...), 0 for a name without one."""
    found = re.match(r"qa(\d+)_", Path(path).name)
    return int(found.group(1)) if found else 0


def babi_file(folder: Path, task: int, split: str) -> Path | None:
    """The file qa{task}_*_{split}.txt under `folder`, None if there is none."""
    found = sorted(Path(folder).glob(f"qa{task}_*_{split}.txt"))
    return found[0] if found else None


def read_task(folder: Path, task: int, split: str, memory_size: int = 50) -> list[BabiExample]:
    """One task's split; a missing file is an error."""
    if task not in TASKS:
        raise SeqattnError(f"babi.tasks: no task {task}; bAbI tasks are 1..20")
    path = babi_file(folder, task, split)
    if path is None:
        raise SeqattnError(f"{folder}: task {task}'s {split}ing file qa{task}_*_{split}.txt is missing; "
                           "pick other babi.tasks or add the file")
    return read_babi(path, task, memory_size)


def split_valid(examples: list[BabiExample], fraction: float) -> tuple[list[BabiExample], list[BabiExample]]:
    """The last `fraction` of one file's questions (rounded down) validate, the rest train."""
    if not 0.0 <= fraction < 1.0:
        raise SeqattnError(f"babi.valid_fraction: must be in [0, 1), got {fraction}")
    cut = len(examples) - int(len(examples) * fraction)
    return examples[:cut], examples[cut:]


def load_babi(cfg: BabiConfig, log=print) -> dict[str, list[BabiExample]]:
    """train / valid / test examples of `cfg.tasks`, each training file split by `split_valid`.

    One task: per-task training, where a missing file is an error. Several: joint training on all of
    them mixed (in task order), where a task without a training file is skipped with a log line.
    """
    folder = cfg.resolved_root() / cfg.dataset
    if not folder.is_dir():
        raise SeqattnError(f"{folder}: bAbI folder not found; set babi.root or babi.dataset")
    if not cfg.tasks:
        raise SeqattnError("babi.tasks: empty; list task numbers 1..20")
    joint = len(cfg.tasks) > 1
    out: dict[str, list[BabiExample]] = {"train": [], "valid": [], "test": []}
    for task in cfg.tasks:
        if joint and task in TASKS and babi_file(folder, task, "train") is None:
            log(f"bAbI task {task}: no training file qa{task}_*_train.txt under {folder}; training without it")
        else:
            train, valid = split_valid(read_task(folder, task, "train", cfg.memory_size), cfg.valid_fraction)
            out["train"] += train
            out["valid"] += valid
        out["test"] += read_task(folder, task, "test", cfg.memory_size)
    return out


def build_babi_vocab(examples: list[BabiExample]) -> WordVocab:
    """Every word of the examples' stories, questions and answers (WordVocab, min count 1)."""
    texts = [" ".join(s) for ex in examples for s in (*ex.memory, ex.question, ex.answer)]
    return WordVocab.build(texts, min_count=1)


@dataclass
class BabiBatch(Batch):
    """A Batch whose src is [B, M+1, W]: M memory rows (oldest first, missing slots all pad), then the
    question; src_mask [B, M] is True at real memories."""

    support: list[list[int]] = field(default_factory=list)  # per example, the memory slots of its supporting facts

    def to(self, device: torch.device) -> BabiBatch:
        moved = super().to(device)
        return BabiBatch(moved.src, moved.src_mask, moved.tgt_in, moved.tgt_out, moved.indices, moved.ntokens,
                         support=self.support)


@dataclass
class BabiIds:
    """A BabiExample as word ids: what a batch is built from."""

    memory: list[list[int]]  # [M][W_i]
    question: list[int]
    answer: list[int]
    support: list[int]


def encode_babi(ex: BabiExample, vocab: WordVocab) -> BabiIds:
    """The example's words (already tokenised by `words`) -> ids; unknown words -> unk_id."""
    ids = lambda tokens: [vocab.stoi.get(w, vocab.unk_id) for w in tokens]  # noqa: E731
    return BabiIds([ids(s) for s in ex.memory], ids(ex.question), ids(ex.answer), ex.support)


def collate_babi(examples: list[BabiExample], indices: list[int], vocab: WordVocab) -> BabiBatch:
    """examples[i] for i in indices -> a padded batch (collate_ids)."""
    return collate_ids([encode_babi(examples[i], vocab) for i in indices], indices, vocab)


def collate_ids(chosen: list[BabiIds], indices: list[int], vocab: WordVocab) -> BabiBatch:
    """Encoded examples -> a padded batch; tgt_in = BOS + answer, tgt_out = answer + EOS."""
    M = max(1, max(len(ex.memory) for ex in chosen))
    W = max(1, max(len(s) for ex in chosen for s in (*ex.memory, ex.question)))
    blank, row = [vocab.pad_id] * W, lambda s: s + [vocab.pad_id] * (W - len(s))  # noqa: E731
    src = torch.tensor([[*map(row, ex.memory), *[blank] * (M - len(ex.memory)), row(ex.question)] for ex in chosen],
                       dtype=torch.long)  # [B, M+1, W]
    src_mask = torch.arange(M) < torch.tensor([len(ex.memory) for ex in chosen]).unsqueeze(1)  # [B, M]
    answers = [ex.answer for ex in chosen]
    return BabiBatch(
        src=src, src_mask=src_mask,
        tgt_in=pad([[vocab.bos_id] + a for a in answers], vocab.pad_id),
        tgt_out=pad([a + [vocab.eos_id] for a in answers], vocab.pad_id),
        indices=list(indices), ntokens=sum(len(a) + 1 for a in answers), support=[ex.support for ex in chosen],
    )
