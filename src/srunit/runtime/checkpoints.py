"""Finding and describing a run's checkpoints (reading only; `srunit.engine.checkpoint` writes them).

Layout of RUN/checkpoints/:
    step_00001000/   G.safetensors D.safetensors F.safetensors state.pt [KEEP]
    latest -> step_00001000      (a symlink, replaced atomically)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from srunit._yaml import load_yaml
from srunit.errors import CheckpointError, ConfigError

__all__ = ["STATE_FILE", "LATEST", "DIRECTIONS", "checkpoint_name", "has_checkpoint", "resolve_checkpoint",
           "checkpoint_origin", "read_run_config", "run_method"]

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
LATEST = "latest"

# The network file of each translation direction in a checkpoint folder: every method saves its
# A -> B translator's network as G, a two-sided method its B -> A one as G_BA.
DIRECTIONS = {"AtoB": "G", "BtoA": "G_BA"}


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


def has_checkpoint(root: Path) -> bool:
    """Whether RUN/checkpoints holds a checkpoint (temporary folders of an interrupted save do not count)."""
    return (root / LATEST).is_symlink() or any(p.is_dir() for p in root.glob("step_*"))


def resolve_checkpoint(path: Path) -> Path:
    """A run folder, a checkpoints folder or one checkpoint folder -> the checkpoint folder."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"checkpoint path {path} does not exist; give a run folder (runs/NAME) or a checkpoint folder"
        )
    for candidate in (path, path / LATEST, path / "checkpoints" / LATEST):
        if candidate.is_dir() and (candidate / STATE_FILE).exists():
            return candidate.resolve()
    raise CheckpointError(
        f"no checkpoint found at {path}: expected RUN/checkpoints/latest/, a step_N folder holding {STATE_FILE}, "
        "or (for translation) a G.safetensors / *_net_G.pth file"
    )


def checkpoint_origin(path: Path) -> tuple[Path, Path | None, int | None]:
    """Where a checkpoint comes from: (its folder, its run folder, its step).

    ``path`` is what `resolve_checkpoint` takes, or a weights file (whose folder is then the checkpoint
    folder). The run folder is RUN when the checkpoint folder is RUN/checkpoints/step_N (or latest)
    and RUN/config.yaml exists, else None; the step is N of a step_N folder, else None.
    """
    path = Path(path)
    folder = path.resolve().parent if path.is_file() else resolve_checkpoint(path)
    name = folder.name
    step = int(name[len("step_") :]) if name.startswith("step_") and name[len("step_") :].isdigit() else None
    run = folder.parent.parent
    return folder, run if folder.parent.name == "checkpoints" and (run / "config.yaml").is_file() else None, step


def read_run_config(run: Path) -> dict[str, Any]:
    """RUN/config.yaml as a dict; {} (with a warning naming the file) where it cannot be read."""
    config_file = run / "config.yaml"
    try:
        config = load_yaml(config_file.read_text(encoding="utf-8"), str(config_file))
    except (OSError, UnicodeDecodeError, ConfigError) as err:
        log.warning("%s could not be read (%s); the checkpoint is described without it", config_file, err)
        return {}
    return config if isinstance(config, dict) else {}


def run_method(config: dict[str, Any]) -> str | None:
    """The method name of a run's config (None where it names none)."""
    section = config.get("method")
    return str(section["name"]) if isinstance(section, dict) and "name" in section else None
