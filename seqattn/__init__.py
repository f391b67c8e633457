"""seqattn: attention-based sequence-to-sequence learning on one shared core.

`seqattn.load(checkpoint)` (seqattn.api) is imported on first use, so `import seqattn` stays light."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Model", "Prediction", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from seqattn import api

        return getattr(api, name)
    raise AttributeError(f"module 'seqattn' has no attribute {name!r}")
