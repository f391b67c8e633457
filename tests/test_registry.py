"""The registry: every architecture names a builder and a task that exist; unknown names list the known ones."""
from __future__ import annotations

import pytest

from seqattn.config import ModelConfig, load_config
from seqattn.errors import SeqattnError
from seqattn.models import build_model
from seqattn.registry import ARCHS, TASKS, arch, load
from seqattn.tasks import Task, task_class


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_every_entry_resolves(name: str):
    entry = arch(name)
    assert callable(load(entry.builder)) and entry.task in TASKS
    assert issubclass(load(TASKS[entry.task]), Task)


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(SeqattnError) as err:
        build_model(ModelConfig(arch="rnnserch"), 10, 10, 0, 2, 3)
    message = str(err.value)
    assert message.startswith("model.arch: unknown architecture 'rnnserch'") and all(a in message for a in ARCHS)
    with pytest.raises(SeqattnError, match="model.arch: unknown"):
        task_class(load_config(None, ["model.arch=nope"]))


def archs_of(task: str) -> list[str]:
    return [name for name, entry in ARCHS.items() if entry.task == task]


def test_tasks_of_architectures():
    assert set(archs_of("translation")) == {"rnnencdec", "rnnsearch", "luong", "transformer"}
    assert archs_of("captioning") == ["show-attend-tell"]
    assert task_class(load_config(None, ["model.arch=show-attend-tell"])).__name__ == "CaptioningTask"
