"""Question answering end to end: the QA task on the shared trainer, `seqattn answer` (split, files,
stdin, attention pictures, scores) and `seqattn evaluate --babi`, and the scores by hand."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import seqattn
from cli import app
from seqattn.data.babi import BabiExample, load_babi
from seqattn.config import load_config
from seqattn.errors import SeqattnError
from seqattn.evaluation.qa import accuracy_by_task, support_hit_rate

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def example(task: int, answer: list[str], support: list[int]) -> BabiExample:
    return BabiExample(task, [["a"], ["b"], ["c"]], [1, 2, 3], ["q"], answer, support)


def test_accuracy_is_exact_match_of_the_whole_answer_per_task():
    examples = [example(1, ["x"], []), example(1, ["y"], []), example(8, ["apple", "football"], []),
                example(8, ["n", "w"], [])]
    assert accuracy_by_task(examples, ["x", "z", "apple,football", "n"]) == {1: 50.0, 8: 50.0}


def test_support_hit_rate_counts_the_strongest_memory_per_hop():
    examples = [example(2, ["x"], [0, 2]), example(2, ["x"], [1]), example(2, ["x"], [])]
    hops = [torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]),  # hop 1 on fact 0, hop 2 on fact 2
            torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]]),  # hop 1 on fact 1, hop 2 misses
            torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])]  # no supporting fact in the window: not counted
    assert support_hit_rate(examples, hops) == {2: [100.0, 50.0]}


@pytest.fixture(scope="module")
def trained(babi: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MemN2N (no linear start) trained on task 1 for 400 updates through `seqattn train`."""
    out = tmp_path_factory.mktemp("memn2n")
    result = invoke("train", ROOT / "recipes/sukhbaatar2015/memn2n.yaml", f"out_dir={out}", "model.emb_dim=20",
                    "model.linear_start=false", "train.max_steps=400", "train.valid_every=100",
                    "babi.valid_fraction=0.02")
    assert result.exit_code == 0, result.output
    return out / "best.pt"


def test_api_answers_story_texts_and_examples(trained: Path) -> None:
    model = seqattn.load(trained)
    story = ("1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary?\n"
             "4 Daniel went back to the hallway.\n5 Where is Daniel?")
    answers = model.answer([story])
    examples = model.questions([story])
    assert len(answers) == len(examples) == 2
    for example, (best,) in zip(examples, answers):
        assert best.source == [" ".join(words) for words in example.memory]
        assert best.alpha.shape == (len(best.target), len(example.memory))
    assert [best.text for best, in model.answer(examples)] == [best.text for best, in answers]
    with pytest.raises(SeqattnError, match=r"model memn2n does not translate; use .answer\(\) or `seqattn answer`"):
        model.translate(["Where is Mary?"])


def test_trained_memory_network_answers_splits_files_and_stdin(trained: Path, babi: Path, tmp_path: Path):
    scores, answers = tmp_path / "scores.json", tmp_path / "test.answers"
    result = invoke("answer", "-c", trained, "--split", "test", "-o", answers, "--scores", scores)
    assert result.exit_code == 0, result.output
    accuracy = json.loads(scores.read_text())["accuracy"]["1"]
    assert accuracy > 60.0  # task 1 after 400 updates; a random answer among 6 places is right 1 time in 6
    lines = answers.read_text().splitlines()
    assert len(lines) == 1000
    test_file = next(babi.glob("qa1_*_test.txt"))
    result = invoke("evaluate", "--hyp", answers, "--babi", test_file)
    assert result.exit_code == 0 and f"| 1    | {accuracy:.1f}" in result.output, result.output
    story = "1 Mary went to the kitchen.\n2 John moved to the garden.\n3 Where is Mary?\n4 Mary travelled to the office.\n5 Where is Mary?\n"
    result = runner.invoke(app, ["answer", "-c", str(trained)], input=story)
    assert result.exit_code == 0 and result.stdout.splitlines() == ["kitchen", "office"], result.output


def test_attention_pictures_mark_supporting_facts(trained: Path, tmp_path: Path):
    result = invoke("answer", "-c", trained, "--split", "valid", "-o", tmp_path / "a", "--attention-dir", tmp_path / "att",
                    "--attention-max", 2)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "att/00000.json").read_text())
    hops = torch.tensor(data["hops"])
    assert hops.shape == (3, len(data["story"])) and data["support"] and (tmp_path / "att/00000.png").stat().st_size > 0
    # every hop a distribution over the recipe's 50 memory slots, of which the story fills a few
    assert hops.sum(-1).gt(0).all() and hops.sum(-1).le(1 + 1e-6).all()


def test_answer_count_mismatch_and_wrong_model_are_one_line_errors(trained: Path, babi: Path, tmp_path: Path):
    hyp = tmp_path / "short.answers"
    hyp.write_text("kitchen\n")
    result = invoke("evaluate", "--hyp", hyp, "--babi", next(babi.glob("qa1_*_test.txt")))
    assert result.exit_code == 2 and "1 answers for the 1000 questions" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = invoke("translate", "-c", trained, "-i", hyp)
    assert result.exit_code == 2 and "does not translate" in result.output


def test_joint_training_skips_task_3_but_tests_it(babi: Path):
    cfg = load_config(ROOT / "recipes/sukhbaatar2015/memn2n_joint.yaml", ["babi.tasks=[2,3]"])
    splits = load_babi(cfg.babi)
    assert {ex.task for ex in splits["train"]} == {2} and {ex.task for ex in splits["test"]} == {2, 3}
