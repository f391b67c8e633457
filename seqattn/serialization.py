"""Files that must survive a crash and never run foreign code: written atomically (temporary file,
then rename), read with `torch.load(weights_only=True)` (tensors and plain Python values only)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from seqattn.errors import SeqattnError


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write `payload` to `path` so that a crash leaves either the old or the new file, whole."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """What `save_checkpoint` wrote; anything else (other bytes, a pickle of other objects, which is
    never unpickled) is one line `PATH: not a seqattn checkpoint: why`."""
    path = Path(path)
    if not path.is_file():
        raise SeqattnError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise SeqattnError(f"{path}: not a seqattn checkpoint: {unreadable(err)}") from None


def unreadable(err: Exception) -> str:
    """torch.load's reason in a few words: its weights-only refusal runs to a paragraph advising
    weights_only=False, which a checkpoint of ours never needs."""
    text = str(err)
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    if refused:
        return f"it refers to {refused[1]}, which is never loaded (a checkpoint holds tensors and plain values)"
    if "Weights only load failed" in text:
        detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        return f"unreadable as tensors and plain values ({detail[1].strip() if detail else 'a pickle of other objects'})"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def checked(ckpt: Any, path: Path) -> dict[str, Any]:
    """`ckpt` if it holds a config and a model, else an error naming `path`."""
    if not isinstance(ckpt, dict) or not {"config", "model"} <= ckpt.keys():
        raise SeqattnError(f"{path}: not a seqattn checkpoint: no config and model inside")
    return ckpt
