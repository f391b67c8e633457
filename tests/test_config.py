"""Recipes load into dataclasses; overrides apply; unknown keys and wrong types are named errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from seqattn.config import Config, load_config
from seqattn.errors import SeqattnError

RECIPES = sorted(Path(__file__).resolve().parent.parent.glob("recipes/*/*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_loads(recipe: Path) -> None:
    assert isinstance(load_config(recipe), Config)


def test_overrides_apply_with_yaml_types(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model: {arch: rnnencdec}\ntrain: {lr: 0.01}\n")
    cfg = load_config(path, ["train.lr=0.5", "train.max_steps=7", "out_dir=x", "train.betas=[0.8, 0.9]"])
    assert (cfg.model.arch, cfg.train.lr, cfg.train.max_steps, cfg.out_dir) == ("rnnencdec", 0.5, 7, "x")
    assert cfg.train.betas == (0.8, 0.9)
    assert cfg.model.emb_dim == 256  # untouched default


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.1\n  learning_rate: 0.1\n")
    with pytest.raises(SeqattnError, match=rf"{path}: unknown option\(s\) train.learning_rate"):
        load_config(path)


def test_unknown_override_and_wrong_type() -> None:
    with pytest.raises(SeqattnError, match=r"unknown option\(s\) model.size"):
        load_config(None, ["model.size=3"])
    with pytest.raises(SeqattnError, match="train.max_steps: expected int"):
        load_config(None, ["train.max_steps=ten"])
    with pytest.raises(SeqattnError, match="write it as section.key=value"):
        load_config(None, ["train.lr"])


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: [0.1\n")
    with pytest.raises(SeqattnError, match=rf"{path} line \d+: not valid YAML"):
        load_config(path)


def test_dataset_definition_by_name(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("data: multi30k\n")
    cfg = load_config(path, ["data.tgt=fr"])
    assert (cfg.data.corpus, cfg.data.test, cfg.data.tgt) == ("multi30k", "test_2016_flickr", "fr")
    path.write_text("data: wmt99\n")
    with pytest.raises(SeqattnError, match=r"no dataset definition .*wmt99.yaml; known: multi30k"):
        load_config(path)


def test_configs_saved_by_earlier_versions_still_load():
    """Checkpoints hold their config; keys since retired (classify.epochs, lr, weight_decay) are dropped,
    any other unknown key is still an error naming it."""
    from seqattn.config import config_from_dict

    raw = Config().to_dict()
    raw["classify"].update(epochs=10, lr=0.1, weight_decay=5e-4)
    assert config_from_dict(raw, "old.pt") == Config()
    raw["classify"]["epoch"] = 3
    with pytest.raises(SeqattnError, match=r"old.pt: unknown option\(s\) classify.epoch;"):
        config_from_dict(raw, "old.pt")


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_builds_its_model(recipe: Path) -> None:
    """Each recipe's model section builds its model (tiny vocabularies, untrained CNNs, no data read)."""
    import torch

    from seqattn.models import build_model
    from seqattn.modules.backbones import build_backbone
    from seqattn.registry import arch

    cfg = load_config(recipe, ["backbone.pretrained=none"])
    task = arch(cfg.model.arch).task
    torch.manual_seed(0)
    if task == "classification":
        model = build_model(cfg.model, 0, 10, -1, -1, -1, backbone=cfg.backbone)
    elif task == "captioning":
        model = build_model(cfg.model, 0, 12, 0, 2, 3, backbone=build_backbone(cfg.backbone), grid=cfg.backbone.grid)
    else:
        words = ["<pad>", "<unk>", "<s>", "</s>", *(f"w{i}" for i in range(8))]
        model = build_model(cfg.model, 12, 12, 0, 2, 3, **({"words": words} if task == "qa" else {}))
    assert sum(p.numel() for p in model.parameters()) > 0
