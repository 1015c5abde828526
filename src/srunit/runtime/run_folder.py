"""The run folder and the checkpoint paths a user passes: every file name of a run is spelled here.

A training run lives in one folder, RUN (``train.runs_dir/train.name``)::

    RUN/config.yaml        the config in force (written at the start, rewritten by every resume)
    RUN/run.json           versions, device, seed, data sizes and batch sizes of the start
    RUN/history.jsonl      one line per start and resume: time, step, overrides and what they changed
    RUN/metrics.jsonl      one line per logged step
    RUN/train.lock         held (flock) by the one process that trains the run; names it
    RUN/checkpoints/
        step_00001000/     NAME.safetensors for each network (G, D, F ...), state.pt, [KEEP]
        latest -> step_00001000      a symlink, replaced atomically
        .tmp-*, .old-*     what an interrupted save leaves (tidied when the run is next started)
    RUN/samples/step_00001000.png    sample grids
    RUN/tensorboard/, RUN/wandb/, RUN/mlruns/   the experiment trackers' files
    RUN/eval/scores.json   the run's evaluation record (`srunit.eval.records`), with eval/translated/
                           (the translations scored) and eval/predicted/ (the segmenter's class maps)

`RunFolder` names these paths; the engine writes through it, and inference, the app, export, eval,
report and the benchmark read through it. `CheckpointSource` resolves what a user passes as a
checkpoint (a run folder, a checkpoint folder, a network file, a public ``*_net_G.pth``, an exported
file) and a translation direction to what it is, in one place.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from srunit._reading import MAX_CONFIG_BYTES, check_regular_file, link_to_nothing, read_text
from srunit._yaml import load_yaml
from srunit.checks import check_choice, check_path
from srunit.errors import CheckpointError, ConfigError, shell_word

__all__ = ["DIRECTIONS", "KEEP_MARKER", "LATEST", "NETWORK_SUFFIX", "OLD_PREFIX", "ONNX_SUFFIX", "PUBLIC_SUFFIXES",
           "PROGRAM_SUFFIX", "STATE_FILE", "TMP_PREFIX", "TORCHSCRIPT_SUFFIXES", "CheckpointSource", "RunFolder",
           "checkpoint_folders",
           "checkpoint_name", "checkpoint_step", "has_checkpoint", "is_exported_file", "is_run_folder", "method_name",
           "network_file", "resolve_checkpoint", "run_around"]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- a checkpoint folder

STATE_FILE = "state.pt"  # the training state beside the network files (step, optimizers, random states)
KEEP_MARKER = "KEEP"  # a checkpoint that rotation keeps
LATEST = "latest"  # RUN/checkpoints/latest -> the newest step folder
NETWORK_SUFFIX = ".safetensors"  # a network file (srunit.runtime.network_files): NAME.safetensors
_STEP_PREFIX = "step_"
TMP_PREFIX = ".tmp-"  # a checkpoint (or link) being written
OLD_PREFIX = ".old-"  # a step folder moved aside while the same step is written again

# The network file of each translation direction in a checkpoint folder: every method saves its
# A -> B translator's network as G, a two-sided method its B -> A one as G_BA.
DIRECTIONS = {"AtoB": "G", "BtoA": "G_BA"}
# Generator files of the public CUT/SRUNIT (*_net_G.pth) and CycleGAN (*_net_G_A.pth, *_net_G_B.pth) code.
PUBLIC_SUFFIXES = (".pth", ".pt")
_PUBLIC_DIRECTIONS = {"_net_G_B": "BtoA", "_net_G": "AtoB", "_net_G_A": "AtoB"}
# Files of `srunit export`: ONNX, or TorchScript (a .pt only when it holds TorchScript code, not a state dict).
ONNX_SUFFIX = ".onnx"
TORCHSCRIPT_SUFFIXES = (".ts", ".torchscript", ".pt")
PROGRAM_SUFFIX = ".pt2"  # a torch.export program (torch.export.save)


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint of ``step``: step_00001000."""
    return f"{_STEP_PREFIX}{step:08d}"


def checkpoint_step(name: str) -> int | None:
    """The step of a step folder (or sample grid) name, step_00001000[.png] -> 1000; None for any other name."""
    stem = name.removesuffix(".png")
    digits = stem[len(_STEP_PREFIX):]
    return int(digits) if stem.startswith(_STEP_PREFIX) and digits.isdigit() else None


def checkpoint_folders(root: Path) -> list[Path]:
    """The step folders of RUN/checkpoints ``root`` (not the temporary folders of a save), in name order."""
    return sorted(p for p in Path(root).glob(f"{_STEP_PREFIX}*") if p.is_dir())


def network_file(folder: Path, name: str) -> Path:
    """The file of network ``name`` (G, D, F ...) in checkpoint folder ``folder``."""
    return Path(folder) / f"{name}{NETWORK_SUFFIX}"


def has_checkpoint(root: Path) -> bool:
    """Whether RUN/checkpoints holds a checkpoint (temporary folders of an interrupted save do not count)."""
    return (Path(root) / LATEST).is_symlink() or bool(checkpoint_folders(root))


def resolve_checkpoint(path: Path) -> Path:
    """A run folder, a checkpoints folder or one checkpoint folder -> the checkpoint folder (``latest`` resolved).

    Raises:
        CheckpointError: nothing there, or no checkpoint (a folder holding state.pt) at any of those places.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists() and path.name != LATEST:  # the user's own link, not a run's latest:
        # the advice to restore a run's checkpoints folder did not apply to it
        raise CheckpointError(f"{path} is a symbolic link to {os.readlink(path)}, which leads to no run or checkpoint "
                              f"(it does not exist, lies below a file, or is a loop of links); point the link at a run "
                              f"or checkpoint folder (ln -sfn RUN {shell_word(path)}), or give that folder itself")
    for link in (path, path / LATEST, RunFolder(path).latest):
        if link.is_symlink() and not link.exists():  # `latest` names a step folder that is gone
            raise CheckpointError(_dangling_latest(link))
    missing = _missing_latest(path)
    if missing is not None and not path.exists():
        raise CheckpointError(missing)
    if not path.exists():
        raise CheckpointError(
            f"checkpoint path {path} does not exist; give a run folder (runs/NAME) or a checkpoint folder"
        )
    for candidate in (path, path / LATEST, RunFolder(path).latest):
        if candidate.is_dir() and (candidate / STATE_FILE).exists():
            return candidate.resolve()
    if missing is not None:
        raise CheckpointError(missing)
    raise CheckpointError(
        f"no checkpoint found at {path}: expected RUN/{RunFolder.CHECKPOINTS}/{LATEST}/, a step_N folder holding "
        f"{STATE_FILE}, or (for translation) a {DIRECTIONS['AtoB']}{NETWORK_SUFFIX} / *_net_G.pth file"
    )


def _missing_latest(path: Path) -> str | None:
    """The message for a checkpoints folder whose ``latest`` link was deleted while step_N checkpoints remain (``path``
    is that ``latest``, the checkpoints folder or the run folder), with the command that makes it again; else None."""
    for link in (path, path / LATEST, RunFolder(path).latest):
        if link.name != LATEST or link.is_symlink() or link.exists() or not link.parent.is_dir():
            continue
        newest = _newest_complete(link.parent)
        if newest is not None:
            return (f"{link} is missing (it links the newest checkpoint, and was deleted); make it again: "
                    f"ln -s {newest} {shell_word(link)}")
    return None


def _newest_complete(root: Path) -> str | None:
    """The name of the newest step folder of RUN/checkpoints ``root`` that holds its state.pt, or None."""
    complete = [p.name for p in checkpoint_folders(root) if (p / STATE_FILE).is_file()]
    return complete[-1] if complete else None


def _dangling_latest(link: Path) -> str:
    """The message for a link (``latest``) to a checkpoint folder that does not exist, with the command that points
    it at the newest one that does."""
    newest = _newest_complete(link.parent)
    fix = (f"point it at a checkpoint that exists: ln -sfn {newest} {shell_word(link)}" if newest is not None else
           "no step_N checkpoint is left there; restore the checkpoints folder from a copy")
    return f"{link_to_nothing(link)}; {fix}"


def is_exported_file(path: str | Path) -> bool:
    """Whether ``path`` is a file of `srunit export`: ``.onnx``, a torch.export program (``.pt2``), or a TorchScript
    archive (.ts, .torchscript, or a .pt holding TorchScript code rather than a plain state dict)."""
    path = Path(path)
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    if suffix in (ONNX_SUFFIX, PROGRAM_SUFFIX) or suffix in (".ts", ".torchscript"):
        return True
    if suffix == ".pt" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    return False


# ----------------------------------------------------------------------------- the run folder


class RunFolder:
    """The paths of one run folder (see the module docstring); nothing is created or read by naming them."""

    CONFIG = "config.yaml"
    RECORD = "run.json"
    HISTORY = "history.jsonl"
    METRICS = "metrics.jsonl"
    LOCK = "train.lock"
    CHECKPOINTS = "checkpoints"
    SAMPLES = "samples"
    EVAL = "eval"
    SCORES = "scores.json"  # in EVAL
    TRANSLATED = "translated"  # in EVAL
    PREDICTED = "predicted"  # in EVAL
    MASKS = "masks"  # in EVAL: a StegoGAN run's unmatchability masks of its translations
    TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlruns"}  # train.loggers -> its folder
    # A folder holding config.yaml and one of these is a run folder (its files only train, eval --run and
    # report write).
    MARKERS = (RECORD, CHECKPOINTS, LOCK, HISTORY, METRICS)

    def __init__(self, path: str | Path) -> None:
        self.path = check_path(path, "RunFolder: path")  # an int was Python's "expected str, bytes or os.PathLike"

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    # ---------------------------------------------------------------- files
    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def record(self) -> Path:
        """run.json: what the run started with."""
        return self.path / self.RECORD

    @property
    def history(self) -> Path:
        return self.path / self.HISTORY

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def lock(self) -> Path:
        return self.path / self.LOCK

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def latest(self) -> Path:
        """RUN/checkpoints/latest, the link to the newest checkpoint (it may not exist)."""
        return self.checkpoints / LATEST

    def checkpoint(self, step: int) -> Path:
        """RUN/checkpoints/step_N of ``step``."""
        return self.checkpoints / checkpoint_name(step)

    @property
    def samples(self) -> Path:
        return self.path / self.SAMPLES

    def sample(self, step: int) -> Path:
        """The sample grid of ``step``: RUN/samples/step_N.png."""
        return self.samples / f"{checkpoint_name(step)}.png"

    def sample_files(self) -> list[Path]:
        """The sample grids, oldest first ([] without any)."""
        if not self.samples.is_dir():
            return []
        return sorted(p for p in self.samples.glob(f"{_STEP_PREFIX}*.png") if checkpoint_step(p.name) is not None)

    def tracker(self, logger: str) -> Path:
        """The folder of the experiment tracker ``logger`` (a name of train.loggers)."""
        return self.path / self.TRACKERS[logger]

    @property
    def eval(self) -> Path:
        """RUN/eval: the evaluation record and the images it scored."""
        return self.path / self.EVAL

    @property
    def scores(self) -> Path:
        """RUN/eval/scores.json, the evaluation record."""
        return self.eval / self.SCORES

    @property
    def translated(self) -> Path:
        return self.eval / self.TRANSLATED

    @property
    def predicted(self) -> Path:
        return self.eval / self.PREDICTED

    @property
    def masks(self) -> Path:
        """RUN/eval/masks: the unmatchability masks of the translations (StegoGAN)."""
        return self.eval / self.MASKS

    # ---------------------------------------------------------------- what it holds
    def foreign_entries(self) -> list[str]:
        """What a user keeps in a folder that is no run (`is_run`), sorted: every entry but the lock a start takes
        first and empty folders of the run's names (a start killed before it wrote config.yaml leaves no more).
        Files of the run's own names count too: a user's config.yaml, or notes in eval/, would be overwritten or
        taken along with the run."""
        names = {self.CHECKPOINTS, self.SAMPLES, self.EVAL, *self.TRACKERS.values()}
        found = []
        for name in sorted(os.listdir(self.path)):
            entry = self.path / name
            if name == self.LOCK or (name in names and entry.is_dir() and not entry.is_symlink()
                                     and not any(entry.iterdir())):
                continue
            found.append(name)
        return found

    def is_run(self) -> bool:
        """Whether the folder holds a training run's files (config.yaml and one of `MARKERS`)."""
        return self.config.is_file() and any((self.path / m).exists() for m in self.MARKERS)

    def has_checkpoint(self) -> bool:
        return has_checkpoint(self.checkpoints)

    def latest_checkpoint(self) -> Path:
        """The newest checkpoint folder (``latest`` resolved). Raises CheckpointError without one."""
        return resolve_checkpoint(self.latest)

    def latest_step(self) -> int | None:
        """The step of the newest checkpoint; None without one."""
        return checkpoint_step(self.latest_checkpoint().name) if self.has_checkpoint() else None

    def read_config(self) -> dict[str, Any]:
        """config.yaml as a dict; {} (with a warning naming the file) where it cannot be read."""
        try:
            config = load_yaml(read_text(self.config, "the run's config", limit=MAX_CONFIG_BYTES, error=ConfigError),
                               str(self.config))
        except ConfigError as err:
            log.warning("%s could not be read (%s); the checkpoint is described without it", self.config, err)
            return {}
        return config if isinstance(config, dict) else {}

    def method(self) -> str | None:
        """The method name of config.yaml (None where it names none or cannot be read)."""
        return method_name(self.read_config())


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a training run's files (see `RunFolder.is_run`)."""
    return RunFolder(folder).is_run()


def run_around(path: Path) -> RunFolder | None:
    """The run folder that ``path`` (a file or folder of a run: its config.yaml, RUN/checkpoints/step_N) lies in,
    the nearest one above it; None where no folder above it is a run."""
    return next((RunFolder(p) for p in Path(path).parents if is_run_folder(p)), None)


def method_name(config: dict[str, Any]) -> str | None:
    """The method name of a run's config as a dict (None where it names none)."""
    section = config.get("method")
    return str(section["name"]) if isinstance(section, dict) and "name" in section else None


# ----------------------------------------------------------------------------- what a user passes

SourceKind = Literal["checkpoint", "network", "public", "exported"]


@dataclass(frozen=True)
class CheckpointSource:
    """What a path given as a checkpoint is, and the file that holds the generator of a direction.

    - ``checkpoint``: a run folder, its checkpoints folder or one checkpoint folder (step_N, latest);
      ``file`` is the network file of ``direction`` in that checkpoint (G.safetensors, G_BA.safetensors).
    - ``network``: a network file (G.safetensors ...), used as it is.
    - ``public``: a generator state dict of the public CUT/SRUNIT/CycleGAN code (``*_net_G.pth``).
    - ``exported``: a file of `srunit export` (.onnx, TorchScript); its direction is in its metadata.

    ``folder`` is the checkpoint folder (of a network file: the folder holding it), ``run`` the run it
    belongs to (RUN/checkpoints/step_N with RUN/config.yaml), ``step`` N; each None where unknown.
    ``direction`` is what is translated: the one asked for, or what a file holds (None where only an
    exported file's metadata says, see `check_held_direction`).
    """

    path: Path
    kind: SourceKind
    file: Path
    direction: str | None
    folder: Path | None = None
    run: RunFolder | None = None
    step: int | None = None

    @classmethod
    def resolve(cls, path: str | Path, direction: str | None = None) -> CheckpointSource:
        """What ``path`` is (see the class). ``direction`` (AtoB, BtoA; None: AtoB for a folder, the file's own
        for a file) picks a checkpoint's generator; for a file it must be what the file holds (AtoB or None:
        the file as it is).

        Raises:
            ConfigError: an unknown direction, or a file that does not hold the direction asked for.
            CheckpointError: nothing at ``path``, a folder without a checkpoint, or a file of an unknown type.
        """
        if direction is not None:
            check_choice(direction, "--direction", DIRECTIONS)
        path = check_path(path, "CheckpointSource.resolve: path")  # an int was Python's "expected str, bytes ..."
        if path.exists() and not path.is_dir():  # a FIFO or a device (or a link to one) is refused unread
            check_regular_file(path, "checkpoint", error=CheckpointError,
                               fix="give a run folder, a checkpoint folder or a network file")
        if is_exported_file(path):
            return cls(path, "exported", path, direction)
        if path.is_file():
            held = _file_direction(path)
            _check_asked(path, direction, held)
            if path.suffix in PUBLIC_SUFFIXES:
                kind: SourceKind = "public"
            elif path.suffix == NETWORK_SUFFIX:
                kind = "network"
            else:
                raise CheckpointError(
                    f"{path}: unknown checkpoint file type; give a run folder, a checkpoint folder (.../step_N), "
                    f"{DIRECTIONS['AtoB']}{NETWORK_SUFFIX} or {DIRECTIONS['BtoA']}{NETWORK_SUFFIX}, a *_net_G.pth / "
                    f"*_net_G_A.pth / *_net_G_B.pth, or a file of srunit export ({ONNX_SUFFIX}, {PROGRAM_SUFFIX}, "
                    f"{'/'.join(TORCHSCRIPT_SUFFIXES)}); an exported file is known by its suffix"
                )
            folder = path.resolve().parent
            run, step = _origin(folder) if kind == "network" else (None, None)
            return cls(path, kind, path, held or "AtoB", folder if kind == "network" else None, run, step)
        folder = resolve_checkpoint(path)
        direction = direction or "AtoB"
        run, step = _origin(folder)
        return cls(path, "checkpoint", network_file(folder, DIRECTIONS[direction]), direction, folder, run, step)

    @property
    def method(self) -> str | None:
        """The method name of the run's config.yaml; None without a run (or a config that names none)."""
        return self.run.method() if self.run is not None else None

    @property
    def public_code(self) -> str | None:
        """For a public generator file, the code that saved it: "CycleGAN" (``*_net_G_A.pth``, ``*_net_G_B.pth``)
        or "CUT/SRUNIT" (``*_net_G.pth``); None for any other kind."""
        if self.kind != "public":
            return None
        return "CycleGAN" if self.path.stem.endswith(("_net_G_A", "_net_G_B")) else "CUT/SRUNIT"

    def check_held_direction(self, held: str | None, *, exact: bool = False, method: str | None = None,
                             exportable: str | None = None) -> None:
        """For an exported file, whose metadata gives the direction it ``held`` (None where it says none), the
        ``method`` and the directions its checkpoint had generators of (``exportable``, "AtoB,BtoA"; None or "":
        not known): ConfigError unless the direction asked for fits it. ``exact``: a direction asked for must be the
        one held (None counts as AtoB); otherwise, as for every file, only BtoA must be held (AtoB or None: the file
        as it is)."""
        if not exact:
            _check_asked(self.path, self.direction, held)
            return
        held = held or "AtoB"
        if self.direction is not None and self.direction != held:
            asked = (f"--direction {self.direction}: {self.path} was exported with --direction {held} and translates "
                     f"in that direction only")
            if exportable and self.direction not in exportable.split(","):
                # a CUT file was told to export the B -> A generator, which a CUT run does not have
                raise ConfigError(f"{asked} (its {method or ''} run has no B -> A generator srunit exports: "
                                  f"two-sided methods such as cyclegan have one); leave --direction out to use it")
            other = "B -> A" if self.direction == "BtoA" else "A -> B"
            raise ConfigError(f"{asked}; leave --direction out to use it, or export the {other} generator (srunit "
                              f"export RUN --direction {self.direction}) and give that file")


def _file_direction(path: Path) -> str | None:
    """The direction a network or public generator file translates in, from its name: G_BA.safetensors and
    *_net_G_B.pth are B -> A; G.safetensors, *_net_G.pth and *_net_G_A.pth A -> B; None for any other name."""
    stem = path.stem
    if stem == DIRECTIONS["BtoA"] or stem.endswith("_net_G_B"):
        return "BtoA"
    if stem == DIRECTIONS["AtoB"] or stem.endswith(("_net_G", "_net_G_A")):
        return "AtoB"
    return None


def _check_asked(path: Path, direction: str | None, held: str | None) -> None:
    """A file holds one generator: ``direction`` BtoA must be what the file holds (AtoB or None: the file as it is)."""
    if direction in (None, "AtoB") or held == direction:
        return
    what = "the A -> B generator" if held == "AtoB" else "a generator of no known direction"
    raise ConfigError(
        f"--direction {direction} picks the B -> A generator, but {path} holds {what} (a file is used as it is); "
        f"give the run or checkpoint folder with --direction {direction}, or the B -> A generator's file "
        f"({DIRECTIONS['BtoA']}{NETWORK_SUFFIX}, *_net_G_B.pth, or an export of srunit export --direction BtoA)"
    )


def _origin(folder: Path) -> tuple[RunFolder | None, int | None]:
    """(the run, the step) of checkpoint folder ``folder``: the run is RUN when the folder is
    RUN/checkpoints/step_N (or latest) and RUN/config.yaml exists, else None; the step is N of step_N."""
    run = RunFolder(folder.parent.parent)
    belongs = folder.parent.name == RunFolder.CHECKPOINTS and run.config.is_file()
    return (run if belongs else None), checkpoint_step(folder.name)
