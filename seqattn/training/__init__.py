"""Training: the loop, optimiser and schedules, checkpoints."""
from seqattn.training.checkpoint import load_checkpoint, load_model, load_models, save_checkpoint
from seqattn.training.trainer import Progress, Trainer, resolve_device

__all__ = ["Progress", "Trainer", "load_checkpoint", "load_model", "load_models", "resolve_device", "save_checkpoint"]
