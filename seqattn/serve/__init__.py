"""`seqattn serve`: an attention explorer in the browser and the JSON API behind it (FastAPI)."""
from __future__ import annotations

from seqattn.serve.app import create_app
from seqattn.serve.models import Served, load_served

__all__ = ["Served", "create_app", "load_served"]
