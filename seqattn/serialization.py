"""Files that must survive a crash and never run foreign code: written atomically (temporary file,
then rename), read with `torch.load(weights_only=True)` (tensors and plain Python values only)."""
from __future__ import annotations

import os
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
    path = Path(path)
    if not path.is_file():
        raise SeqattnError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise SeqattnError(f"{path}: not a readable seqattn checkpoint ({type(err).__name__}: {err})") from None
