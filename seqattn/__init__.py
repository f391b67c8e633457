"""seqattn: attention-based sequence-to-sequence learning on one shared core."""

__version__ = "0.1.0"
