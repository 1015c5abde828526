"""Training engine: the loop (`trainer`), one step at a time (`runner`), the learning-rate
`schedule`, `checkpoint`s, `device` and precision, `provenance` of results and the `speed` benchmark."""

from srunit.engine.device import autocast, precision_dtype, resolve_device
from srunit.engine.runner import StepRunner
from srunit.engine.schedule import Schedule
from srunit.engine.trainer import Trainer

__all__ = ["Schedule", "StepRunner", "Trainer", "autocast", "precision_dtype", "resolve_device"]
