"""Training engine: the loop (`trainer`), one step at a time (`runner`), the learning-rate
`schedule`, checkpoint writing and rotation (`checkpoint`), the lock and history of a run folder
(`run_state`), resume, stop signals, distributed training and the `speed` benchmark. Devices,
precision, network files and the run folder's names are in `srunit.runtime`. The names load their modules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from srunit._lazy import lazy_exports

_EXPORTS = {"Schedule": "srunit.engine.schedule", "StepRunner": "srunit.engine.runner",
            "Trainer": "srunit.engine.trainer", "distributed": "srunit.engine.distributed",
            "checkpoint": "srunit.engine.checkpoint", "run_state": "srunit.engine.run_state",
            "trainer": "srunit.engine.trainer"}
__all__ = ["Schedule", "StepRunner", "Trainer"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from srunit.engine import checkpoint, distributed, run_state, trainer
    from srunit.engine.runner import StepRunner
    from srunit.engine.schedule import Schedule
    from srunit.engine.trainer import Trainer
