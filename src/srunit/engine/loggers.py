"""Experiment trackers: the same scalars and sample grids to TensorBoard, Weights & Biases or MLflow.

``train.loggers`` names the trackers of a run (default ``tensorboard``). Each gets every logged
scalar as ``train/NAME`` at its step and every sample grid as one RGB image; only the process
that writes the run folder logs. W&B and MLflow are optional extras, imported only when named:

- ``tensorboard``: event files in ``RUN/tensorboard``; a resumed run hides the events an attempt
  killed after its last checkpoint logged beyond it, as RUN/metrics.jsonl drops them.
- ``wandb``: a run in project ``$WANDB_PROJECT`` (default ``srunit``) with files in ``RUN/wandb``;
  ``WANDB_MODE=offline`` keeps it on disk (``wandb sync`` uploads it later). A resumed run
  continues the same W&B run (its id is kept in ``RUN/wandb/run_id``).
- ``mlflow``: a run in experiment ``$MLFLOW_EXPERIMENT_NAME`` (default ``srunit``) on
  ``$MLFLOW_TRACKING_URI``, or, when that is not set, in the local store ``RUN/mlruns``. A resumed
  run continues the same MLflow run (its id is kept in ``RUN/mlruns/run_id``).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from srunit._atomic import write_text_atomic
from srunit._reading import read_text
from srunit.config import dotted
from srunit.errors import ConfigError, shell_word
from srunit.options import LOGGER_NAMES
from srunit.runtime.run_folder import RunFolder

__all__ = ["LOGGER_NAMES", "ExperimentLogger", "check_loggers", "open_loggers"]

log = logging.getLogger(__name__)


class ExperimentLogger(Protocol):
    """What the trainer calls; ``image`` is (H, W, 3) uint8."""

    def log_scalars(self, step: int, values: Mapping[str, float]) -> None: ...

    def log_image(self, step: int, tag: str, image: np.ndarray) -> None: ...

    def close(self) -> None: ...


class TensorBoardLogger:
    """TensorBoard's writer writes the event file in a thread of its own: a write that fails there (the file size
    limit, `ulimit -f`, met; the run folder moved away) printed that thread's traceback, and the next write raised
    the same OSError without a file name, which the CLI took for a failed write to standard output. The thread's
    failure is kept here instead and raised at the next write or at close as one OSError naming the event file."""

    def __init__(self, run_dir: Path, name: str, config: Mapping[str, Any], start_step: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = RunFolder(run_dir).tracker("tensorboard")
        _wait_past_event_files(folder)
        self.failure: BaseException | None = None
        self._raised = False
        _hook_writer_threads()  # before the writer's thread starts: it may fail at once (a full disk)
        before = set(threading.enumerate())
        # A session that continues from step T hides what a killed attempt logged after T (purge_step).
        self.writer = SummaryWriter(str(folder), purge_step=start_step + 1 if start_step else None)
        for thread in set(threading.enumerate()) - before:  # the event file's writer thread
            _WRITER_THREADS[thread] = self

    def log_scalars(self, step: int, values: Mapping[str, float]) -> None:
        def write() -> None:
            for k, v in values.items():
                self.writer.add_scalar(f"train/{k}", v, step)

        self._checked(write)

    def log_image(self, step: int, tag: str, image: np.ndarray) -> None:
        self._checked(lambda: self.writer.add_image(tag, image, step, dataformats="HWC"))

    def close(self) -> None:
        self._checked(self.writer.close)  # close joins the thread: a failure of its last writes is known then

    def _checked(self, write: Callable[[], object]) -> None:
        try:
            write()
        except OSError as err:  # the writer thread's failure, raised again by the writer
            self.failure = self.failure or err
        if self.failure is None or self._raised:
            return
        self._raised = True  # once: the writer raises it again at every later call (and at close)
        failure = self.failure
        if not isinstance(failure, OSError):
            raise failure
        event_writer = getattr(getattr(self.writer, "file_writer", None), "event_writer", None)
        event_file = getattr(event_writer, "_file_name", None) or self.writer.log_dir
        raise OSError(failure.errno, failure.strerror or str(failure), event_file) from None


# The writer threads of open TensorBoard loggers, whose uncaught exception the logger reports (see TensorBoardLogger).
_WRITER_THREADS: weakref.WeakKeyDictionary[threading.Thread, TensorBoardLogger] = weakref.WeakKeyDictionary()


def _hook_writer_threads() -> None:
    """Install, once, a threading.excepthook that keeps a TensorBoard writer thread's exception in its logger;
    every other thread's goes to the hook that was in place."""
    previous = threading.excepthook
    if getattr(previous, "srunit_writer_threads", False):
        return

    def hook(args: Any) -> None:
        logger = _WRITER_THREADS.get(args.thread) if args.thread is not None else None
        if logger is None and type(args.thread).__module__.startswith("tensorboard") \
                and isinstance(args.exc_value, OSError):
            # a writer thread that failed as its SummaryWriter was made (a full disk), before it was registered:
            # the constructor's own OSError reports it (`open_loggers`), where the thread printed its traceback
            log.debug("a TensorBoard writer thread failed",
                      exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
            return
        if logger is None or not isinstance(args.exc_value, Exception):
            previous(args)
            return
        log.debug("the TensorBoard writer thread failed", exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
        logger.failure = logger.failure or args.exc_value

    hook.srunit_writer_threads = True  # type: ignore[attr-defined]
    threading.excepthook = hook


# The longest wait for the clock to pass the newest event file's second; a file further ahead (a run moved from a
# machine whose clock runs ahead) is warned about instead.
MAX_EVENT_FILE_WAIT = 2.0


def _wait_past_event_files(folder: Path) -> None:
    """Where the event file a new session would open sorts before one already in ``folder``, sleep until the clock's
    second is past theirs. TensorBoard reads a run's files in the order of their names,
    ``events.out.tfevents.SECONDS.HOST.PID.N``: within one second that order is the pid's and the counter's as text
    (``.10`` before ``.9``), so a session resumed in the second its killed attempt started could be read first and
    the killed attempt's values after the checkpoint showed again (a resume test failed when its counter crossed 9).
    """
    names = [p.name for p in folder.glob("events.out.tfevents.*")]
    if not names or _next_event_file_name() > max(names):
        return
    seconds = [int(parts[3]) for parts in (n.split(".") for n in names) if len(parts) > 3 and parts[3].isdigit()]
    wait = max(seconds, default=0) + 1 - time.time()
    if wait > MAX_EVENT_FILE_WAIT:
        log.warning("%s holds an event file dated %.0f s ahead of this machine's clock; TensorBoard may show what "
                    "an interrupted session logged after its checkpoint", folder, wait)
    elif wait > 0:
        time.sleep(wait)


def _next_event_file_name() -> str:
    """The name TensorBoard's next event file in this process would take now ("" where its counter is not found,
    so that the caller waits)."""
    import socket

    from tensorboard.summary.writer import event_file_writer

    counter = getattr(getattr(event_file_writer, "_global_uid", None), "_value", None)
    if not isinstance(counter, int):
        return ""
    return f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{counter}"


def _kept_id(path: Path) -> str | None:
    if not path.exists():
        return None
    return read_text(path, "the tracker's run id", limit=4096, fix=f"delete {path} to start a new tracker run"
                     ).strip() or None


class WandbLogger:
    def __init__(self, run_dir: Path, name: str, config: Mapping[str, Any], start_step: int = 0) -> None:
        import wandb

        self.wandb = wandb
        folder = RunFolder(run_dir).tracker("wandb")  # where wandb.init(dir=RUN) writes
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / "run_id"
        run_id = _kept_id(id_file) or secrets.token_hex(6)  # W&B run ids: lowercase letters and digits
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "srunit"), name=name, id=run_id,
                              resume="allow", dir=str(run_dir), config=dict(config))
        write_text_atomic(id_file, run_id + "\n")

    def log_scalars(self, step: int, values: Mapping[str, float]) -> None:
        self.run.log({f"train/{k}": v for k, v in values.items()}, step=step)

    def log_image(self, step: int, tag: str, image: np.ndarray) -> None:
        self.run.log({tag: self.wandb.Image(image)}, step=step)

    def close(self) -> None:
        self.run.finish()


class MlflowLogger:
    def __init__(self, run_dir: Path, name: str, config: Mapping[str, Any], start_step: int = 0) -> None:
        import mlflow

        self.mlflow = mlflow
        store = RunFolder(run_dir).tracker("mlflow")
        own_store = not os.environ.get("MLFLOW_TRACKING_URI")  # set_tracking_uri sets the variable
        if own_store:
            # The local file store is what needs no server; MLflow keeps it but asks for an opt-in.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri(store.resolve().as_uri())
        mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "srunit"))
        id_file = store / "run_id"
        run_id = _kept_id(id_file)
        if run_id and own_store:
            _check_own_artifacts(mlflow, run_id, store)
        self.run = mlflow.start_run(run_id=run_id) if run_id else mlflow.start_run(run_name=name)
        if run_id is None:
            mlflow.log_params({key: str(value) for key, value in dotted(config).items()})
        store.mkdir(parents=True, exist_ok=True)
        write_text_atomic(id_file, self.run.info.run_id + "\n")

    def log_scalars(self, step: int, values: Mapping[str, float]) -> None:
        self.mlflow.log_metrics({f"train/{k}": v for k, v in values.items()}, step=step)

    def log_image(self, step: int, tag: str, image: np.ndarray) -> None:
        self.mlflow.log_image(image, key=tag.replace("|", "-"), step=step)

    def close(self) -> None:
        self.mlflow.end_run()


def _check_own_artifacts(mlflow: Any, run_id: str, store: Path) -> None:
    """MLflow's file store names a run's artifact folder by absolute path: in a run folder copied or moved, the
    resume's sample images went to the original folder (or made it again at the old place). ConfigError then."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    try:
        uri = mlflow.get_run(run_id).info.artifact_uri
    except Exception:  # noqa: BLE001 - a run the store lacks: start_run names it as MLflow does
        return
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return
    folder = Path(url2pathname(parsed.path))
    if os.path.realpath(store) not in (os.path.realpath(folder), *map(os.path.realpath, folder.parents)):
        raise ConfigError(f"{store} keeps MLflow run {run_id}, whose images MLflow writes to {folder}, outside this "
                          f"run folder: the run was copied or moved from there, and resuming would write its samples "
                          f"into that folder. Start a new MLflow store for this run (mv {shell_word(store)} "
                          f"{shell_word(f'{store}.old')}; the "
                          f"metrics logged so far stay there), then resume")


# name -> (class, the package it needs, the extra that installs it)
_LOGGERS: dict[str, tuple[Callable[..., ExperimentLogger], str, str]] = {
    "tensorboard": (TensorBoardLogger, "tensorboard", ""),
    "wandb": (WandbLogger, "wandb", "wandb"),
    "mlflow": (MlflowLogger, "mlflow", "mlflow"),
}
assert tuple(_LOGGERS) == LOGGER_NAMES == tuple(RunFolder.TRACKERS), \
    "every logger name of srunit.options needs its class and its folder"


def _wandb_key_missing() -> bool:
    """Whether W&B would need an API key that this environment lacks: online mode (the default), no
    ``WANDB_API_KEY`` and no login for its host in the netrc file that ``wandb login`` writes."""
    import netrc
    from urllib.parse import urlparse

    if os.environ.get("WANDB_MODE", "online") in ("offline", "disabled", "dryrun") or os.environ.get("WANDB_API_KEY"):
        return False
    url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    try:
        host = urlparse(url).hostname or "api.wandb.ai"
    except ValueError as err:  # "http://[::1": urllib refuses it; W&B could not reach it either
        raise ConfigError(f"train.loggers wandb: WANDB_BASE_URL {url!r} is not a URL ({err}); fix the variable, "
                          f"unset it to use https://api.wandb.ai, or leave wandb out of train.loggers") from None
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    if not os.path.exists(path):
        return True
    # The netrc module opens the file itself: a FIFO would block it for ever, /dev/zero never end. The file is
    # read through the one reader first (a regular file of a bounded size, UTF-8), then parsed.
    read_text(path, "the netrc file", limit=_NETRC_BYTES, error=ConfigError,
              fix="W&B reads its API key there ($NETRC, else ~/.netrc); point NETRC at the file `wandb login` writes, "
                  "or set WANDB_API_KEY")
    try:
        return netrc.netrc(path).authenticators(host) is None
    except (OSError, netrc.NetrcParseError):
        return True


_NETRC_BYTES = 1 << 20  # a netrc holds a few logins


def check_loggers(names: Sequence[str]) -> None:
    """Refuse, before a run folder is made, trackers that cannot start here: an unknown name, a package that is
    not installed, W&B online without an API key.

    Raises:
        ConfigError: naming the tracker and the fix (the command that installs it, the key it needs).
    """
    import importlib.util

    for logger in names:
        if logger not in _LOGGERS:
            raise ConfigError(f"train.loggers: unknown logger {logger!r}; allowed: {', '.join(LOGGER_NAMES)}")
        _, package, extra = _LOGGERS[logger]
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"train.loggers {logger} needs the {package} package, which is not installed; "
                              f"pip install 'srunit[{extra}]', or leave {logger} out of train.loggers")
        if logger == "wandb" and _wandb_key_missing():
            raise ConfigError("train.loggers wandb: W&B is online (WANDB_MODE is not offline) but no API key is set "
                              "here (no WANDB_API_KEY, no `wandb login`); run `wandb login`, set WANDB_API_KEY, or "
                              "set WANDB_MODE=offline to keep the run on disk (nothing was written)")


def open_loggers(names: Sequence[str], run_dir: Path, name: str, config: Mapping[str, Any],
                 start_step: int = 0) -> list[ExperimentLogger]:
    """Start the trackers ``names`` for the run in ``run_dir`` (``config``: the resolved config as a dict)
    for a session that continues from step ``start_step``.

    Raises:
        ConfigError: what `check_loggers` refuses, or a tracker that failed to start (its error named).
    """
    check_loggers(names)
    loggers: list[ExperimentLogger] = []
    for logger in names:
        try:
            loggers.append(_LOGGERS[logger][0](run_dir, name, config, start_step))
        except Exception as err:  # noqa: BLE001 - a tracker's own errors (network, credentials, its store)
            for opened in loggers:
                opened.close()
            if isinstance(err, ConfigError):  # srunit's own refusal names its way out
                raise
            if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):  # not the tracker's settings
                raise ConfigError(f"train.loggers {logger}: the tracker could not start: the disk of {run_dir} is "
                                  f"full ({err.strerror}); free space and run the command again") from err
            raise ConfigError(f"train.loggers {logger}: the tracker could not start ({type(err).__name__}: "
                              f"{str(err).strip()[:300]}); fix its settings or leave {logger} out of train.loggers "
                              f"(resume the run with srunit train --resume {shell_word(run_dir)} --train.loggers "
                              "...)") from err
    return loggers
