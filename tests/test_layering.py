"""Layering: every subpackage imports on its own, lower layers never load higher ones, and text paths
never load the captioning dependencies."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import seqattn

PACKAGE = Path(seqattn.__file__).parent
SUBPACKAGES = sorted(
    "seqattn." + ".".join(p.relative_to(PACKAGE).parent.parts)
    for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE
)


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after `statement` (which must succeed)."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, f"{statement!r} failed in a fresh interpreter:\n{run.stderr}"
    return set(json.loads(run.stdout.splitlines()[-1]))


def test_subpackages_are_found():
    assert {"seqattn.data", "seqattn.models", "seqattn.modules", "seqattn.modules.decoders", "seqattn.search",
            "seqattn.tasks", "seqattn.training"} <= set(SUBPACKAGES)


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_each_subpackage_imports_alone(name: str):
    loaded_after(f"import {name}")


@pytest.mark.parametrize("lower, higher", [
    ("seqattn.state", ("seqattn.models", "seqattn.modules", "seqattn.config", "seqattn.search")),
    ("seqattn.modules", ("seqattn.models", "seqattn.config", "seqattn.search", "seqattn.tasks")),
    ("seqattn.modules.decoders", ("seqattn.models", "seqattn.config")),
    ("seqattn.models", ("seqattn.search", "seqattn.tasks", "seqattn.training")),
    ("seqattn.search", ("seqattn.tasks", "seqattn.training")),
])
def test_lower_layers_never_import_higher_ones(lower: str, higher: tuple[str, ...]):
    loaded = loaded_after(f"import {lower}")
    assert not {m for m in loaded if m.startswith(higher)}, f"{lower} loads {sorted(m for m in loaded if m.startswith(higher))}"


@pytest.mark.parametrize("statement", [
    "import seqattn.inference", "import seqattn.tasks", "import seqattn.tasks.translation", "import cli", "from seqattn.data import prepare, collate",
    "import seqattn.evaluation",
])
def test_text_paths_load_no_captioning_dependency(statement: str):
    loaded = loaded_after(statement)
    assert not {m for m in loaded if m.split(".")[0] in ("PIL", "pycocoevalcap")}
