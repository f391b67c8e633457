"""Training: the loop, optimiser and schedules, checkpoints."""
from seqattn.training.checkpoint import load_checkpoint, load_model, load_models, save_checkpoint
from seqattn.training.trainer import Progress, Trainer, autocast_dtype, resolve_device

__all__ = ["Progress", "Trainer", "autocast_dtype", "load_checkpoint", "load_model", "load_models", "resolve_device", "save_checkpoint"]
