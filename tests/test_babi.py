"""The bAbI reader: stories, memory windows, supporting facts, malformed lines, real files, batching."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqattn.config import BabiConfig
from seqattn.data.babi import build_babi_vocab, collate_babi, load_babi, read_babi, read_task
from seqattn.errors import SeqattnError


SMALL = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Sandra moved to the garden.
6 Where is Daniel? \thallway\t4
1 Mary got the football there.
2 Mary took the apple there.
3 What is Mary carrying? \tfootball,apple\t1 2
"""


def write(tmp_path: Path, text: str, name: str = "qa1_single-supporting-fact_train.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_small_file_stories_answers_and_support(tmp_path: Path):
    first, second, third = read_babi(write(tmp_path, SMALL), task=1)
    assert first.memory == [["mary", "moved", "to", "the", "bathroom"], ["john", "went", "to", "the", "hallway"]]
    assert (first.question, first.answer, first.support, first.lines) == (["where", "is", "mary"], ["bathroom"], [0], [1, 2])
    # the question on line 3 is not a memory; line 4 is the third memory
    assert second.lines == [1, 2, 4, 5] and second.support == [2] and second.answer == ["hallway"]
    # a new story starts at line number 1
    assert third.lines == [1, 2] and third.answer == ["football", "apple"] and third.support == [0, 1]
    assert third.task == 1


def test_memory_window_cuts_older_facts(tmp_path: Path):
    _, second, third = read_babi(write(tmp_path, SMALL), task=1, memory_size=2)
    assert second.lines == [4, 5] and second.memory[0][0] == "daniel"
    assert second.support == [0]  # line 4 is slot 0 of the window
    first = read_babi(write(tmp_path, SMALL), task=1, memory_size=1)[0]
    assert first.lines == [2] and first.support == []  # supporting line 1 fell out of the window


@pytest.mark.parametrize("line, problem", [
    ("Mary moved to the bathroom.", "no leading line number"),
    ("2 Where is Mary?", "question without a tab-separated answer"),
    ("2 Where is Mary? \tbathroom", "question without a tab-separated answer"),
    ("2 Where is Mary? \tbathroom\tone", "not a list of line numbers"),
])
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, problem: str):
    path = write(tmp_path, f"1 John went to the hallway.\n{line}\n")
    with pytest.raises(SeqattnError) as err:
        read_babi(path, task=1)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path.name} line 2: ") and problem in message


def test_missing_training_file_per_task_and_joint(tmp_path: Path):
    write(tmp_path, SMALL, "qa1_single-supporting-fact_train.txt")
    write(tmp_path, SMALL, "qa1_single-supporting-fact_test.txt")
    write(tmp_path, SMALL, "qa3_three-supporting-facts_test.txt")
    with pytest.raises(SeqattnError, match=r"task 3's training file qa3_\*_train.txt is missing"):
        load_babi(BabiConfig(root=str(tmp_path.parent), dataset=tmp_path.name, tasks=[3]))
    messages: list[str] = []
    joint = load_babi(BabiConfig(root=str(tmp_path.parent), dataset=tmp_path.name, tasks=[1, 3], valid_fraction=0.4),
                      log=messages.append)
    assert len(messages) == 1 and messages[0].startswith("bAbI task 3: no training file")
    # task 1's 3 questions: int(3 * 0.4) = 1 held out, the last one; tests of both tasks kept
    assert [e.answer for e in joint["train"]] == [["bathroom"], ["hallway"]]
    assert [e.answer for e in joint["valid"]] == [["football", "apple"]]
    assert [e.task for e in joint["test"]] == [1, 1, 1, 3, 3, 3]


def test_real_task1_counts_and_split(babi: Path):
    train = read_task(babi, 1, "train")
    assert len(train) == 10_000
    assert train[0].memory[0] == ["mary", "moved", "to", "the", "bathroom"] and train[0].answer == ["bathroom"]
    split = load_babi(BabiConfig(tasks=[1]))
    assert (len(split["train"]), len(split["valid"])) == (9_000, 1_000)
    assert split["valid"][-1] == train[-1] and split["train"][-1] == train[8_999]
    assert len(split["test"]) == 1_000


def test_collate_layout(tmp_path: Path):
    examples = read_babi(write(tmp_path, SMALL), task=1)
    vocab = build_babi_vocab(examples)
    batch = collate_babi(examples, [0, 1, 2], vocab)
    ids = vocab.stoi
    assert batch.src.shape == (3, 5, 6)  # M = 4 memories + the question, W = 6 ("daniel went back to the hallway")
    assert batch.src_mask.tolist() == [[True, True, False, False], [True] * 4, [True, True, False, False]]
    assert batch.src[0, 0].tolist() == [ids[w] for w in "mary moved to the bathroom".split()] + [0]
    assert batch.src[0, 2:4].eq(vocab.pad_id).all()  # missing slots all pad
    assert batch.src[0, 4].tolist() == [ids["where"], ids["is"], ids["mary"], 0, 0, 0]  # the question is row M
    assert batch.tgt_in[2].tolist() == [vocab.bos_id, ids["football"], ids["apple"]]
    assert batch.tgt_out[2].tolist() == [ids["football"], ids["apple"], vocab.eos_id]
    assert batch.tgt_out[0].tolist() == [ids["bathroom"], vocab.eos_id, vocab.pad_id]
    assert batch.ntokens == 2 + 2 + 3 and batch.support == [[0], [2], [0, 1]]
    assert batch.to(torch.device("cpu")).support == batch.support
