"""Export a trained Transformer for serving: a CTranslate2 model folder or ONNX graphs of the encoder
and one decoder step. Each format's module loads its runtime (ctranslate2, onnx) on first use.

    export(Path("runs/x/best.pt"), "ctranslate2", Path("ct2_model"))
"""
from __future__ import annotations

import shutil
from pathlib import Path

from seqattn.errors import SeqattnError
from seqattn.registry import load

FORMATS = {
    "ctranslate2": "seqattn.export.ctranslate2:export_ctranslate2",
    "onnx": "seqattn.export.onnx:export_onnx",
}
ARCHS = ("transformer",)  # what every format exports


def export(checkpoint: Path, to: str, out: Path) -> None:
    """Write `checkpoint`'s model in format `to` into the new folder `out`, with its sentencepiece
    model(s) beside it (what a server tokenises with)."""
    from seqattn.training import load_model

    if to not in FORMATS:
        raise SeqattnError(f"--to {to}: choose one of {', '.join(FORMATS)}")
    if out.exists():
        raise SeqattnError(f"{out}: already exists; remove it or name a new folder")
    model, cfg, task = load_model(checkpoint)
    if cfg.model.arch not in ARCHS:
        raise SeqattnError(f"{checkpoint}: model.arch is {cfg.model.arch}; export supports {', '.join(ARCHS)} "
                           "checkpoints only")
    writer = load(FORMATS[to])  # before `out` is made: a missing runtime leaves nothing behind
    out.mkdir(parents=True)
    writer(model, task, out)
    for tok in {task.src_tok.path, task.tgt_tok.path}:
        shutil.copy(tok, out / tok.name)


def require(package: str) -> None:
    """Raise SeqattnError naming the extra that installs `package` when it is not importable."""
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise SeqattnError(f"{package} is not installed; pip install 'seqattn[export]'")
