"""Training engine: the loop, checkpoints and resume."""

from srunit.engine.trainer import Schedule, StepRunner, Trainer, resolve_device

__all__ = ["Schedule", "StepRunner", "Trainer", "resolve_device"]
