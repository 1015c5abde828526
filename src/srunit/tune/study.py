"""`srunit tune`: a method's hyper-parameters searched with Optuna, as the paper tuned SRUNIT (Sec. 5.3).

A study lives in an Optuna storage: a SQLite file in the tuning folder by default, or any database URL Optuna
accepts, so several processes (``--jobs N``) or machines work on one study. Each trial suggests values from the
method's search space (`srunit.search`), trains one run per trial seed on the target's training data, scores it on
the target's validation split (`srunit.tune.targets`) and reports the objective (a flat score: mIoU by default).

What keeps a study whole:
- **Budget.** ``--trials N`` is the number of finished trials the study ends with. A trial checks, before it
  trains, that fewer than N trials are finished or running ahead of it (by trial number, which the storage hands
  out once each), else it is pruned unrun: two workers never together start more than the budget.
- **Interruption.** A stop signal checkpoints the trial's run and puts the same parameters back in the queue,
  so the next call resumes that run from its checkpoint; a worker killed outright stops its trial's heartbeat,
  and the next call marks it failed and queues it again (Optuna's retry). A run's folder is named by the hash of
  its settings, so the same parameters always find the same run.
- **Records.** With ``--records DIR`` every finished run leaves a small record there (commit DIR). A trial whose
  runs have records is not trained again, and a study opened on another machine adds every record it does not
  hold as a finished trial first: the same command continues the study there.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from srunit._atomic import (
    FolderWriter,
    check_folder_in_place,
    check_umask,
    replace_with_own_copy,
    write_json_atomic,
    write_text_atomic,
)
from srunit._outputs import file_identity, remove_leftovers
from srunit._reading import read_json
from srunit._version import __version__
from srunit.checks import check_int
from srunit.config import dotted, load_config, read_preset, refuse_overrides_of, set_in_base_files
from srunit.engine.signals import TrainingStopped
from srunit.errors import (
    ConfigError,
    DataError,
    SrunitError,
    TrainingDiverged,
    first_line,
    process_limit,
    process_limited,
    reported_in_one_line,
    shell_word,
)
from srunit.eval.records import flat_scores, in_percent
from srunit.eval.study_records import (
    changed_keys,
    matching_record,
    read_record,
    record_path,
    settings_hash,
    write_record,
)
from srunit.runtime.provenance import git_commit, machine_description
from srunit.search import Param, space_from_dict
from srunit.tune.targets import Target, scores_of, stored_target, target_from_dict

__all__ = ["OBJECTIVES", "LOWER_IS_BETTER", "TuneSettings", "open_study", "run_tune", "study_summary", "shown_score",
           "space_to_dict", "sqlite_file", "TRIALS_DIR", "SETTINGS_FILE", "DEFAULT_STORAGE_FILE"]

log = logging.getLogger(__name__)

OBJECTIVES = ("mean_iou", "pixel_accuracy", "class_accuracy", "directed_flip_rate", "flip_rate", "dist", "acc_30",
              "acc_50")
LOWER_IS_BETTER = frozenset({"dist", "directed_flip_rate", "flip_rate"})
SAMPLERS = ("tpe", "random", "qmc")
TRIALS_DIR = "trials"  # OUT/trials/RUN: the runs of every trial
SETTINGS_FILE = "tune.json"  # OUT/tune.json: what the study is; a rerun with other settings is refused
DEFAULT_STORAGE_FILE = "study.db"  # OUT/study.db: the default SQLite storage
HEARTBEAT_S = 60  # a running trial tells the storage it is alive this often; after GRACE_S of silence it is stale
GRACE_S = 180


def space_to_dict(space: Sequence[Param]) -> dict[str, dict[str, Any]]:
    """A search space in the YAML form `srunit.search.space_from_dict` reads."""
    from srunit.search import LeaveOneOut

    out: dict[str, dict[str, Any]] = {}
    for p in space:
        if isinstance(p, LeaveOneOut):
            out[p.key] = {"leave_one_out": list(p.items)}
        elif p.choices:
            out[p.key] = {"choices": list(p.choices)}
        else:
            out[p.key] = {"low": p.low, "high": p.high, **({"log": True} if p.log else {}),
                          **({"int": True} if p.integer else {})}
        if p.help:
            out[p.key]["help"] = p.help
    return out


@dataclass(frozen=True)
class TuneSettings:
    """Everything that defines a tuning study; stored in OUT/tune.json."""

    preset: str
    target: dict[str, Any]
    space: dict[str, dict[str, Any]]
    study_name: str
    objective: str = "mean_iou"
    trials: int = 20
    seed: int = 1000
    trial_seeds: int = 1
    sampler: str = "tpe"
    sampler_seed: int = 0
    startup_trials: int = 0  # TPE: random trials before it models the results; 0 = max(4, trials // 3)
    overrides: tuple[str, ...] = ()
    # What the preset gave when the study began (`preset_values`): a preset file edited between two calls trained
    # the later trials with other options, in one study, without a word. None in a tune.json of an earlier version.
    preset_config: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.target, dict):
            object.__setattr__(self, "target", stored_target(self.target))
        kind = self.target.get("kind") if isinstance(self.target, dict) else None
        known = scores_of(kind) or OBJECTIVES  # `tune data` listed dist and acc_30, which it then refused
        if self.objective not in known:
            command = f"tune {'data' if kind == 'folders' else kind}"
            what = "unknown score" if self.objective not in OBJECTIVES else \
                f"a score `{command}` does not give (its images have no paired truth)"
            raise ConfigError(f"--objective: {what} {self.objective!r}; choose from {', '.join(known)}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"--sampler: unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        check_int(self.trials, "--trials", 1, maximum=100_000)
        check_int(self.trial_seeds, "--trial-seeds", 1, maximum=1000)
        check_int(self.seed, "--seed", 0, maximum=2**63)
        check_int(self.sampler_seed, "--sampler-seed", 0, maximum=2**32 - 1)
        check_int(self.startup_trials, "--startup-trials", 0, maximum=100_000)
        if not self.study_name.strip():
            raise ConfigError("--study is empty; give the study a name")
        space_from_dict(self.space, "the search space")  # checked here, before any trial

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "minimize" if self.objective in LOWER_IS_BETTER else "maximize"

    @property
    def params(self) -> tuple[Param, ...]:
        return space_from_dict(self.space, "the search space")

    def trial_seed(self, number: int) -> int:
        """The first training seed of trial ``number``: every trial trains with seeds of its own (SEED + number x
        trial_seeds ...), so two studies with the same --seed pair their trials by seed and data."""
        return self.seed + number * self.trial_seeds

    def seeds(self, first: int) -> range:
        return range(first, first + self.trial_seeds)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TuneSettings:
        return cls(**{**data, "overrides": tuple(data.get("overrides") or ())})


def sqlite_file(url: str) -> str | None:
    """The file of an SQLite storage URL (`sqlite:///study.db` -> study.db, `sqlite:////abs/x.db` -> /abs/x.db); None
    for another database, or SQLite in memory."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def _storage(url: str) -> Any:
    import optuna

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}  # workers wait for each other's writes
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.8; they are what we need
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None), **kwargs)


def _sampler(settings: TuneSettings, offset: int) -> Any:
    """The sampler of one worker. Its seed is the study's plus ``offset`` (the worker and the trials the study held
    when it started): a worker that continues a study, or works beside another, draws new points, where the same
    seed would draw the points already tried again."""
    import optuna

    seed = (settings.sampler_seed + offset) % 2**32
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "qmc":  # a scrambled Sobol sequence: it goes on from the points the study holds
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=settings.sampler_seed, scramble=True)
    startup = settings.startup_trials or max(4, settings.trials // 3)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True)


class _OwnErrorsInOneLine(logging.Filter):
    """Optuna logs a failed trial with its exception's traceback: a trial whose data, device or loss srunit
    refused printed a Python traceback before srunit's own one-line error, and so did a trial stopped by Ctrl-C or
    SIGTERM (its checkpoint complete, the trial queued again), or that met `ulimit -n`. For what the command line
    reports in one line (`reported_in_one_line`: srunit's errors and stops, the file system's refusals) the line is
    kept and the traceback dropped (`srunit -v` logs it); other exceptions keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and reported_in_one_line(record.exc_info[1]):
            log.debug("trial failed", exc_info=record.exc_info)
            record.exc_info, record.exc_text = None, None
        return True


class _QuietHeartbeatFailures:
    """A `threading.excepthook` that drops the traceback of Optuna's heartbeat thread when its write to the storage
    failed (the tuning folder moved, the database went away): the trial's own write fails next, and srunit reports
    that in one line, where the heartbeat printed some 90 lines of traceback before it. Every other thread's
    exception goes to the hook it replaced."""

    def __init__(self, previous: Callable[[Any], Any]) -> None:
        self.previous = previous

    def __call__(self, args: Any) -> None:
        import optuna

        tb = args.exc_traceback
        while tb is not None and tb.tb_frame.f_code.co_name != "_record_heartbeat":
            tb = tb.tb_next
        if tb is not None and isinstance(args.exc_value, optuna.exceptions.StorageInternalError):
            log.debug("the trial's heartbeat stopped", exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
            return
        self.previous(args)


def _write_failure(message: str, path: str) -> int | None:
    """The errno of SQLite's ``message`` about the file ``path`` where it says the file system refused a write
    (a full disk, a read-only file system, no permission to write); None otherwise."""
    if "database or disk is full" in message:
        return errno.ENOSPC
    if "attempt to write a readonly database" in message:
        try:
            read_only = bool(os.statvfs(os.path.dirname(os.path.abspath(path))).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        return errno.EROFS if read_only else errno.EACCES
    return None


def open_study(storage: str, settings: TuneSettings, worker: int = 0) -> Any:
    """The study ``settings.study_name`` in ``storage`` (created on first use), with worker ``worker``'s sampler.

    Raises:
        ConfigError: the storage URL cannot be opened, or the study there optimises in the other direction.
        OSError: SQLite could not write the file (a full disk, a read-only file system, no permission), named.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trial_log = logging.getLogger("optuna.study._optimize")  # where Optuna logs a failed trial
    if not any(isinstance(f, _OwnErrorsInOneLine) for f in trial_log.filters):
        trial_log.addFilter(_OwnErrorsInOneLine())
    if not isinstance(threading.excepthook, _QuietHeartbeatFailures):
        threading.excepthook = _QuietHeartbeatFailures(threading.excepthook)
    try:
        study = optuna.create_study(storage=_storage(storage), study_name=settings.study_name,
                                    direction=settings.direction, sampler=_sampler(settings, 0), load_if_exists=True)
        held = len(study.get_trials(deepcopy=False))
        if worker or held:
            study.sampler = _sampler(settings, 7919 * worker + held)
    except Exception as e:  # the database layer's errors (SQLAlchemy's) name a URL it cannot open
        if not isinstance(e, (ValueError, ImportError)) and not type(e).__module__.startswith("sqlalchemy"):
            raise
        first = f"{type(e).__name__}: {first_line(e)}" if first_line(e) else type(e).__name__
        path = sqlite_file(storage) or ""
        if (type(e).__name__ == "OperationalError" and "disk I/O error" in first and path and os.path.exists(path)
                and process_limited("-f")):  # SQLite met RLIMIT_FSIZE growing the file (EFBIG): not damage
            raise ConfigError(f"the study's storage {path} could not be written ({first}) with the file size limit "
                              f"of this process at {process_limit('-f')}: SQLite grows the file past it; raise the "
                              f"limit (`ulimit -f unlimited` in the shell, or the job's limit) and run the same "
                              f"command again (the storage is kept as it was)") from None
        if type(e).__name__ == "OperationalError" and path and (failure := _write_failure(first, path)) is not None:
            # Not damage; named as the command line names a full disk ("the disk is full ...; free space and run the
            # command again"): moving the file aside, as advised for a damaged one, met the same disk
            raise OSError(failure, os.strerror(failure), path) from None
        if type(e).__name__ in ("DatabaseError", "OperationalError") and path and os.path.exists(path):
            # The URL is right, the file is not (truncated, overwritten, a folder): a new URL is not the way out
            raise ConfigError(f"the study's storage {path} cannot be read as an SQLite database ({first}); it "
                              f"is damaged or not a file: move it away (mv {shell_word(path)} "
                              f"{shell_word(f'{path}.damaged')}) and run the same "
                              f"command again; a new storage is made, and the trials whose runs are in the tuning "
                              f"folder resume from their checkpoints") from None
        raise ConfigError(f"--storage {storage}: cannot open it as an Optuna storage ({first}); give a database URL "
                          f"such as sqlite:///study.db") from None
    if study.direction.name.lower() != settings.direction:
        raise ConfigError(f"study {settings.study_name!r} in {storage} {study.direction.name.lower()}s its objective, "
                          f"but --objective {settings.objective} needs {settings.direction}; pass another --study")
    return study


@dataclass
class Trials:
    """What every worker of one call needs: the settings, where runs and records go, the target."""

    settings: TuneSettings
    out: str
    storage: str
    records: str | None = None
    show_progress: bool = False
    target: Target = field(init=False)

    def __post_init__(self) -> None:
        self.target = target_from_dict(self.settings.target, self.out)

    @property
    def runs_dir(self) -> Path:
        return Path(self.out) / TRIALS_DIR

    def run_of(self, trial_overrides: dict[str, Any], seed: int) -> tuple[str, Any, dict[str, Any]]:
        """(run name, training config, record settings) of one run: the name is the preset and the hash of the
        run's settings, so the same parameters and seed always name the same run."""
        s = self.settings
        config = self.target.config(s.preset, s.overrides, trial_overrides, self.runs_dir, "trial", seed)
        identity = self.target.identity(config)
        name = f"{Path(s.preset).stem}-{settings_hash(identity)[:12]}"
        return name, config.with_overrides({"train.name": name}), identity

    def trial_overrides(self, params: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in self.settings.params:
            out.update(p.overrides(params[p.key]))
        return out

    def run(self, params: dict[str, Any], seed: int, *, on_stop: Callable[[], None] | None = None
            ) -> tuple[float, dict[str, Any]]:
        """Train and score (or read from records) every run of a trial with ``params`` and first seed ``seed``;
        returns the objective (the mean over the trial seeds) and the trial's user attributes (its runs, their mean
        scores)."""
        from srunit.engine.trainer import train_to_end

        s = self.settings
        overrides = self.trial_overrides(params)
        names, flats = [], []
        first = seed
        for seed in s.seeds(first):
            name, config, identity = self.run_of(overrides, seed)
            key = f"{TRIALS_DIR}/{name}"
            record = matching_record(self.records, key, identity)
            if record is not None:
                log.info("trial run %s: its record is in %s, not trained again", name, self.records)
                flat = record["scores"]
            else:
                start = time.perf_counter()
                try:
                    run_dir = train_to_end(config, show_progress=self.show_progress)
                except TrainingStopped:  # at its last step too: the worker starts no other trial
                    if on_stop is not None:
                        on_stop()
                    raise
                minutes = (time.perf_counter() - start) / 60
                evaluation = self.target.score(run_dir)
                flat = flat_scores(evaluation)
                if self.records is not None:
                    write_record(self.records, key, identity, seed, evaluation, commit=git_commit(),
                                 version=__version__, machine=machine_description(_device(config)),
                                 train_minutes=minutes, extra={"study": s.study_name, "params": params,
                                                               "trial_seed": first, "objective": s.objective})
            if s.objective not in flat:
                raise DataError(f"run {name} has no {s.objective!r} score (its scores: {', '.join(flat)}); choose an "
                                f"--objective that this target scores")
            names.append(name)
            flats.append(flat)
        mean = {k: float(sum(f[k] for f in flats) / len(flats)) for k in flats[0] if all(k in f for f in flats)}
        return mean[s.objective], {"runs": names, "scores": mean, "seed": first}


def _device(config: Any) -> Any:
    from srunit.runtime.device import resolve_device

    return resolve_device(config.train.device)


def _over_budget(study: Any, trial: Any, budget: int) -> bool:
    """Whether ``budget`` trials are already finished, or finished and running ahead of ``trial`` (by number)."""
    from optuna.trial import TrialState

    ahead = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
             if t.state == TrialState.COMPLETE or t.number < trial.number]
    return len(ahead) >= budget


def _finished(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def unfinished_note(study: Any, settings: TuneSettings) -> str | None:
    """What to say when the workers have ended with fewer than ``settings.trials`` finished trials: trials still
    marked running hold places of the budget (another worker's, or those of a worker killed outright, which
    Optuna queues again once their heartbeat is GRACE_S old). None when the study is complete."""
    from optuna.trial import TrialState

    done = _finished(study)
    if done >= settings.trials:
        return None
    running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    if not running:
        return None
    held = f"trial {running[0]} is" if len(running) == 1 else f"trials {', '.join(map(str, running))} are"
    return (f"study {settings.study_name}: {done} of {settings.trials} trials finished; {held} still marked running "
            f"(by another worker, or by one that was killed: its trial is queued again once it has been silent for "
            f"{GRACE_S:g} s); run the same command again then to finish the study")


class _HeldInterrupt:
    """Between `install` and `restore` (in the main thread, where SIGINT has a Python handler), a SIGINT (Ctrl-C)
    while Optuna creates or records a trial is held until the study can put that trial back (`trial`), where one
    raised at once left the trial marked running: the same command could not continue it for GRACE_S seconds. Within
    `trial` it is raised at once, as KeyboardInterrupt. Outside it every SIGINT is held, a second one too: a job's
    worker gets two from one `pkill -INT` (its own and the one its parent passes on), and one raised inside Optuna's
    tell broke it half-way (`UnboundLocalError`, the trial left failed or running). Training replaces the handler
    while it runs (`srunit.engine.signals.StopSignals`) and puts this one back after."""

    def __init__(self) -> None:
        self.held = False
        self._inside = False
        self._raised = False  # within `trial`, since it began
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if not self._inside:
            self.held = True
            return
        self._raised = True
        self._previous(signum, frame)  # Python's handler (or `srunit`'s, which remembers it): KeyboardInterrupt
        raise KeyboardInterrupt

    def install(self) -> _HeldInterrupt:
        if threading.current_thread() is threading.main_thread() and callable(signal.getsignal(signal.SIGINT)):
            self._previous = signal.signal(signal.SIGINT, self._handle)  # not where SIGINT is ignored (`cmd &`)
        return self

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def raise_held(self) -> None:
        if self.held:
            self.held = False
            raise KeyboardInterrupt

    @contextmanager
    def trial(self) -> Iterator[None]:
        """A context within which a SIGINT is raised at once, a held one first. An error after one is raised as the
        interruption: a library that catches KeyboardInterrupt turns it into another error (safetensors' reader,
        in a run being scored: `G.safetensors is not a readable safetensors file ...; it is damaged`, the trial
        failed and its parameters lost)."""
        self.raise_held()
        self._inside, self._raised = True, False
        try:
            yield
        except Exception as err:
            if self._raised:
                raise KeyboardInterrupt from err
            raise
        finally:
            self._inside = False

    @contextmanager
    def holding(self) -> Iterator[None]:
        """A context within `trial` in which a SIGINT is held again (Optuna's own storage calls)."""
        inside, self._inside = self._inside, False
        try:
            yield
        finally:
            self._inside = inside


def work(trials: Trials, worker: int = 0) -> None:
    """Worker ``worker``: runs trials of the study until it holds ``settings.trials`` finished ones.

    Raises:
        FolderMoved: the tuning folder was moved or replaced meanwhile (whatever the storage's write then raised).
        KeyboardInterrupt / TrainingStopped: a stop; the running trial's parameters were queued again first.
    """
    import optuna

    s = trials.settings
    study = open_study(trials.storage, s, worker)
    params_of = s.params
    state = {"over": False}
    home = Path(trials.out)
    identity = file_identity(home)
    interrupt = _HeldInterrupt()

    def objective(trial: Any) -> float:
        if identity is not None:  # moved away and a link put in its place: the next trial's run went through it
            check_folder_in_place(home, identity, "the tuning study")
        params = {p.key: p.suggest(trial) for p in params_of}
        if _over_budget(study, trial, s.trials):
            state["over"] = True
            trial.set_user_attr("over_budget", True)
            raise optuna.TrialPruned(f"the study holds or runs its {s.trials} trials")
        # A trial queued again (after a stop signal, or by Optuna after its worker died) keeps its seed.
        seed = trial.user_attrs.get("seed")
        if seed is None:
            seed = s.trial_seed(trial.number)
            trial.set_user_attr("seed", seed)
        requeued: list[int] = []

        def requeue() -> None:  # a stop: the same parameters come first next time, and resume the run
            if not requeued:
                requeued.append(trial.number)
                with interrupt.holding():
                    study.enqueue_trial(params, user_attrs={"resumes": trial.number, "seed": seed},
                                        skip_if_exists=False)

        # Wherever the stop comes, in training, while its run is scored, or before its training catches signals
        # (a Ctrl-C there was a failed trial, and one while scoring lost the parameters of a trained run).
        try:
            with interrupt.trial():
                value, attrs = trials.run(params, seed, on_stop=requeue)
        except (TrainingStopped, KeyboardInterrupt):
            requeue()
            raise
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        log.info("trial %d: %s = %s (%s)", trial.number, s.objective, shown_score(s.objective, value),
                 ", ".join(f"{k}={_short(v)}" for k, v in params.items()))
        return value

    # A run whose loss stopped being finite fails its trial (reported in the summary) and another trial takes its
    # place; any other error ends the worker.
    interrupt.install()
    try:
        while not state["over"] and _finished(study) < s.trials:
            interrupt.raise_held()  # one that came between trials: the worker ends before it asks for another
            study.optimize(objective, n_trials=1, catch=(TrainingDiverged,))
        # One that came while the last trial was recorded finds the worker's work done (each trial whole, none
        # running): nothing is left to stop, so none is raised.
    except Exception:  # SQLite's "attempt to write a readonly database", then Optuna's "Should not reach."
        if identity is not None:
            check_folder_in_place(home, identity, "the tuning study")
        raise
    finally:
        interrupt.restore()


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def import_records(study: Any, trials: Trials) -> int:
    """Add every complete trial that the records folder holds and the study does not (matched by run names) as
    a finished trial; returns how many were added. A trial is complete when each of its seeds has a record made
    with the settings its parameters give now."""
    import optuna

    if trials.records is None:
        return 0
    folder = Path(trials.records) / TRIALS_DIR
    if not folder.is_dir():
        return 0
    s = trials.settings
    known = {tuple(t.user_attrs.get("runs") or ()) for t in study.get_trials(deepcopy=False)
             if t.state == optuna.trial.TrialState.COMPLETE}
    distributions = {p.key: p.distribution() for p in s.params}
    trials_found: dict[str, tuple[dict[str, Any], int]] = {}
    for path in sorted(folder.glob("*.json")):
        record = read_record(path)
        if record is None or record.get("study") != s.study_name or not isinstance(record.get("params"), dict) \
                or not isinstance(record.get("trial_seed"), int):
            continue
        key = json.dumps([record["params"], record["trial_seed"]], sort_keys=True)
        trials_found.setdefault(key, (record["params"], record["trial_seed"]))
    space = {p.key: p for p in s.params}
    added = 0
    # In the order of their seeds, each at the number its seed gives (trial k trains on SEED + k x trial_seeds): a
    # trial that failed or was stopped where the records were made leaves a gap, kept here by a failed placeholder,
    # so the trials keep their numbers and a new trial takes a seed no record holds. Added in file order, trial 9 of
    # tune-long-cut became trial 18 and the next trial trained on seed 1020, which a record already held.
    for params, first in sorted(trials_found.values(), key=lambda found: found[1]):
        if set(params) != set(space) or not all(space[k].contains(v) for k, v in params.items()):
            continue  # another space: not this study's trial
        overrides = trials.trial_overrides(params)
        names, flats = [], []
        for seed in s.seeds(first):
            name, _, identity = trials.run_of(overrides, seed)
            record = read_record(record_path(trials.records, f"{TRIALS_DIR}/{name}"))
            if record is None or record["settings_hash"] != settings_hash(identity):
                break
            names.append(name)
            flats.append(record["scores"])
        else:
            if tuple(names) in known or any(s.objective not in f for f in flats):
                continue
            mean = {k: float(sum(f[k] for f in flats) / len(flats)) for k in flats[0] if all(k in f for f in flats)}
            number, offset = divmod(first - s.seed, s.trial_seeds)
            held = len(study.get_trials(deepcopy=False))
            if offset == 0 and number >= held:
                for gap in range(held, number):
                    study.add_trial(optuna.trial.create_trial(
                        state=optuna.trial.TrialState.FAIL,
                        user_attrs={"seed": s.trial_seed(gap), "from_records": True, "not_in_records": True}))
            study.add_trial(optuna.trial.create_trial(
                params=params, distributions=distributions, value=mean[s.objective],
                user_attrs={"runs": names, "scores": mean, "seed": first, "from_records": True}))
            added += 1
    return added


def check_records(trials: Trials) -> None:
    """Refuse a records folder whose trial records this study would silently leave aside and then add to: a record
    of another study (the command lacks that study's ``--study``) or one made with other settings (another preset,
    other fixed options, another search space). Skipping them trained every trial anew into the same folder, so one
    folder held two studies' runs side by side. Called before the tuning folder is made: nothing is written.

    Raises:
        DataError: such a record, named, with what differs and the fix.
    """
    if trials.records is None:
        return
    folder = Path(trials.records) / TRIALS_DIR
    if not folder.is_dir():
        return
    s = trials.settings
    space = {p.key: p for p in s.params}
    for path in sorted(folder.glob("*.json")):
        record = read_record(path)
        if record is None:
            continue
        study = record.get("study")
        if not isinstance(study, str):
            raise DataError(f"{path} is not a tuning trial's record (it names no study: a benchmark's record?); move "
                            f"it out of --records {trials.records} (nothing was trained or written)")
        if study != s.study_name:
            raise DataError(f"--records {trials.records} holds a record of study {study!r} ({path}), not of this "
                            f"study {s.study_name!r}; pass --study {shell_word(study)} (with that study's options) "
                            "to continue "
                            f"it, or another --records folder for a new study (nothing was trained or written)")
        params, seed = record.get("params"), record.get("seed")
        if not isinstance(params, dict) or not isinstance(seed, int) or not isinstance(record.get("trial_seed"), int):
            raise DataError(f"{path} is a study record without its trial's parameters and seeds; restore it from the "
                            f"repository (git checkout -- {shell_word(path)}) or delete it (nothing was trained or "
                            "written)")
        if set(params) != set(space) or not all(space[k].contains(v) for k, v in params.items()):
            raise DataError(f"{path} was made with another search space (parameters {', '.join(sorted(params))}; "
                            f"this study's: {', '.join(sorted(space))}); pass that study's --space, or another "
                            f"--records folder for a new study (nothing was trained or written)")
        _, _, identity = trials.run_of(trials.trial_overrides(params), seed)
        if record["settings_hash"] != settings_hash(identity):
            changed = sorted(changed_keys(record.get("settings") or {}, identity))
            shown = ", ".join(changed[:6]) + (", ..." if len(changed) > 6 else "")
            raise DataError(f"{path} was made with other settings than this command's (differing: "
                            f"{shown or 'unknown'}); pass that study's options as they were, or another --records "
                            f"folder for a new study (nothing was trained or written)")


# The options of `tune data` that name the user's files in its settings (tune.json's "target"), by path.
_TARGET_PATHS = {"data_root": "--data", "images": "--val-images", "labels": "--val-labels", "segmenter": "--segmenter"}


def _moved_paths(before: dict[str, Any], now: dict[str, Any]) -> str:
    """What to say of a study whose data were given under other paths: the settings name them as given, so the
    same options are the way to continue, and where the data moved, a link at each old place gives them back."""
    moved = {option: (before[key], now[key]) for key, option in _TARGET_PATHS.items()
             if isinstance(before.get(key), str) and isinstance(now.get(key), str) and before[key] != now[key]}
    if not moved:
        return ""
    shown = "; ".join(f"{option} was {old}, now {new}" for option, (old, new) in moved.items())
    olds = [Path(old) for old, _ in moved.values()]
    links = [("" if Path(old).parent.is_dir() else f"mkdir -p {shell_word(Path(old).parent)} && ")
             + f"ln -s {shell_word(os.path.abspath(new))} {shell_word(old)}"
             for old, new in moved.values()  # one link for a folder and the folders inside it
             if not os.path.lexists(old) and not any(o != Path(old) and o in Path(old).parents for o in olds)]
    way = f"if they moved, a link at the old place continues it: {' && '.join(links)}" if links else \
        "the study names them by path"
    return f": {shown}; {way}"


def preset_values(preset: str) -> dict[str, Any]:
    """The training options ``preset`` gives (its file and ``base:`` chain read now), without those that only place
    a run: what a study records to find its preset file edited since it began."""
    from srunit.eval.study_records import canonical_run_settings

    return canonical_run_settings(load_config(preset).to_dict())["config"]


def _preset_edited(preset: str, before: dict[str, Any], now: dict[str, Any]) -> str:
    """Where the preset gives other values now than when the study began, named key by key."""
    then_, now_ = dotted(before), dotted(now)
    keys = sorted(changed_keys(then_, now_))
    where = set_in_base_files(preset, keys[:4])
    shown = "; ".join(f"{k} {now_.get(k)!r} now{where.get(k, '')}, {then_.get(k)!r} when the study began"
                      for k in keys[:4])
    more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
    return (f"the preset {preset} was edited since the study began ({shown}{more}): undo the edit to continue the "
            f"study, or give the edited preset a new --out")


def _prepare_out(out: Path, settings: TuneSettings) -> None:
    stored = out / SETTINGS_FILE
    if stored.is_file():
        try:
            previous = TuneSettings.from_dict(read_json(stored, "the tuning settings", error=ConfigError))
        except (ValueError, TypeError, KeyError, SrunitError) as e:
            raise ConfigError(f"{stored} cannot be read as tuning settings ({e}); pass a new --out") from None
        if previous.preset_config is None:  # an earlier version's record: the preset's values were not kept
            previous = replace(previous, preset_config=settings.preset_config)
        if previous.to_dict() != settings.to_dict():
            changed = sorted(k for k in settings.to_dict() if previous.to_dict().get(k) != settings.to_dict()[k])
            if changed == ["preset_config"] and previous.preset_config is not None and \
                    settings.preset_config is not None:
                raise ConfigError(f"{out} holds a tuning study of other options: "
                                  f"{_preset_edited(settings.preset, previous.preset_config, settings.preset_config)}")
            # --study defaults to the folder's name: a folder moved or renamed since holds a study of its old name.
            renamed = (f"; its study is named {previous.study_name} (--study defaults to the --out folder's name): "
                       f"add --study {shell_word(previous.study_name)}" if "study_name" in changed else "")
            moved = _moved_paths(previous.target, settings.target) if "target" in changed else ""
            raise ConfigError(f"{out} holds a tuning study with other settings ({', '.join(changed)} differ{moved}; "
                              f"see {stored}); pass a new --out, or the same options as before to continue it"
                              f"{renamed}")
        return
    # A first run killed while it wrote the settings left only their temporary: the folder is this command's own.
    remove_leftovers([stored])  # the callers hold the folder's OutputLock
    if out.exists() and any(out.iterdir()):
        raise DataError(f"--out {out} exists and is not a tuning folder; pass a new folder (nothing was changed)")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(stored, settings.to_dict())


def owned_options(kind: str) -> dict[str, str]:
    """The training options every trial's run takes from the study, with the option that sets them: an override of
    one was dropped without a word (`tune data --train.seed 5`, `--train.name`) or gave every trial seed one seed."""
    from srunit.synthscapes.settings import BENCH_OWNED

    runs, seed = "--out: OUT/trials", "--seed and --trial-seeds: one seed per run, never one for all"
    if kind == "synthscapes":
        return {**BENCH_OWNED, "train.seed": seed, "train.runs_dir": runs, "train.name": runs}
    data = "--data"
    return {"train.seed": seed, "train.runs_dir": runs, "train.name": runs, "data.root": data, "data.dir_a": data,
            "data.dir_b": data}


def check_space(space: dict, preset_config: Any, source: str, owned: dict[str, str] | None = None,
                 command: str = "tune") -> None:
    """Each entry's ends (or choices) applied to the preset's config, and for a model.* entry its networks built on
    the meta device (no memory; the networks check their sizes), before the study starts: an unknown key or a value
    the option or a network refuses was found by the first trial, as a traceback in Optuna's log, after the tuning
    folder was made."""
    import torch

    from srunit.engine.trainer import check_no_void_options
    from srunit.methods import build_method
    from srunit.search import space_from_dict

    params = space_from_dict(space, source)
    sections = [param.key.split(".", 1)[0] for param in params]
    for param in params:
        if owned and param.key in owned:  # `train.name: {choices: [a]}` was dropped; `train.seed` one seed for all
            raise ConfigError(f"{source}: entry {param.key!r}: {command} sets {param.key} of each run itself "
                              f"({owned[param.key]}); tune another option")
        for value in param.choices or (param.low, param.high):
            if param.integer and not param.choices:
                value = int(value)
            try:
                config = preset_config.with_overrides(param.overrides(value))
                if param.key == "train.device":  # `cuda` on a machine without it failed in the first trial
                    from srunit.runtime.device import resolve_device

                    resolve_device(config.train.device, "train.device")
                if param.key.startswith("model."):
                    with torch.device("meta"):
                        build_method(config.method, config.model)
                # An option its method leaves without effect, as train refuses it (`model.n_blocks` of DRIT trained
                # every trial alike). A model option's effect depends on method.name alone, which no entry varies; a
                # method or data option's on its section's other options, so only where no other entry varies them.
                section = param.key.split(".", 1)[0]
                if section == "model" or sections.count(section) == 1:
                    check_no_void_options(config, [f"{param.key}={value}"])
            except ConfigError as err:
                raise ConfigError(f"{source}: entry {param.key!r} cannot take {value!r}: {err}") from None


def refuse_overrides_of_the_space(space: dict, overrides: tuple[str, ...], source: str) -> None:
    """An override of a key the study tunes: every trial replaced it with its own value, without a word."""
    from srunit.search import space_from_dict

    tuned = {param.key for param in space_from_dict(space, source)}
    for override in overrides:
        key = override.partition("=")[0].strip()
        if key in tuned:
            raise ConfigError(f"--{key}: {source} tunes {key}, so every trial sets it to a value of its own and "
                              f"{override.partition('=')[2].strip()} would be replaced; leave --{key} out, or give a "
                              f"--space FILE without {key}")


def check_settings(settings: TuneSettings) -> None:
    """What `srunit tune` checks of a study before its folder is made: no override of what the study sets itself,
    none without effect, and every search-space entry's ends applied to the preset (see `check_space`). `run_tune`
    checks it too: called from Python, a wrong space failed in the first trial, after the tuning folder was made,
    as a traceback in Optuna's log."""
    from srunit.engine.trainer import check_no_void_options

    kind = "synthscapes" if settings.target.get("kind") == "synthscapes" else "data"  # the command's word
    owned, command = owned_options(kind), f"tune {kind}"
    refuse_overrides_of(settings.overrides, owned, command)
    preset_config = load_config(settings.preset, settings.overrides)
    check_no_void_options(preset_config, settings.overrides, settings.preset)
    check_space(settings.space, preset_config, "the search space", owned, command)
    refuse_overrides_of_the_space(settings.space, settings.overrides, "the search space")


def default_storage(out: Path) -> str:
    # The folder is resolved, never the file: OUT/study.db of a copy made with cp -as is a link to the original's.
    return f"sqlite:///{Path(out).resolve() / DEFAULT_STORAGE_FILE}"


def run_tune(out: str | Path, settings: TuneSettings, *, storage: str | None = None, records: str | Path | None = None,
             jobs: int = 1, show_progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the study; returns its summary (also in OUT/study.json, with OUT/best.yaml).

    Raises:
        JobsStopped / TrainingStopped: a stop signal; every running trial checkpointed and was queued again.
    """
    from srunit.synthscapes.parallel import Job, run_jobs

    check_int(jobs, "--jobs", 1, maximum=1024)
    check_umask("run_tune")
    out = Path(out)
    storage = storage or default_storage(out)
    trials = Trials(settings, str(out), storage, None if records is None else str(records), show_progress)
    missing = [k for k in (settings.objective,) if k not in trials.target.scores]
    flips = getattr(trials.target, "flip_from", None), getattr(trials.target, "flip_to", None)
    if settings.objective == "directed_flip_rate" and trials.target.kind == "folders" and not any(flips):
        # it was taken, made the folder and failed in trial 0, advising another objective the folder then refused
        raise ConfigError("--objective directed_flip_rate: the directed flip rate is of the classes --flip-from into "
                          "--flip-to, and neither is given; give both (e.g. --flip-from 1,2 --flip-to 3), or choose "
                          "another --objective (nothing was written)")
    if missing:
        raise ConfigError(f"--objective {settings.objective}: this target does not score it; choose from "
                          f"{', '.join(trials.target.scores)}")
    check_settings(settings)
    trials.target.check()  # these refusals come before the tuning folder exists: nothing is left behind
    check_records(trials)
    _prepare_out(out, settings)
    if storage == default_storage(out):
        # A tuning folder copied with cp -al or cp -as shares its study.db with the original: the copy's trials were
        # recorded in the original's study. It becomes a file of the copy's own before SQLite opens it.
        replace_with_own_copy(out / DEFAULT_STORAGE_FILE)
    study = open_study(storage, settings)
    added = import_records(study, trials)
    if added:
        log.info("added %d finished trial(s) from the records in %s", added, records)
    with FolderWriter(out) as home:  # its identity: moved away (and a link put in its place), the study stops
        try:
            trials.target.prepare(out)
            remaining = settings.trials - _finished(study)
            if remaining > 0:
                log.info("study %s: %d of %d trials finished; %d worker(s)", settings.study_name,
                         settings.trials - remaining, settings.trials, jobs)
                if jobs == 1:
                    work(trials)
                else:
                    quiet = Trials(settings, str(out), storage, trials.records, False)
                    run_jobs([Job(f"worker{i}", work, (quiet, i)) for i in range(min(jobs, remaining))], jobs)
        except Exception:  # SQLite's "attempt to write a readonly database" was a traceback of 130 lines
            home.check_in_place("the tuning study")
            raise
        home.check_in_place("the tuning study")  # before the summary, plots and best.yaml are written by path
    note = unfinished_note(study, settings)
    if note:
        log.warning("%s", note)
    # The default storage is named relative to the tuning folder, so a moved or copied folder names its own file.
    summary = study_summary(study, settings, DEFAULT_STORAGE_FILE if storage == default_storage(out) else storage)
    from srunit.tune.plots import write_study_plots

    summary["plots"] = write_study_plots(study, out, settings.objective)
    write_json_atomic(out / "study.json", summary)
    if summary["best"] is not None:
        write_text_atomic(out / "best.yaml", best_preset(settings, summary["best"]["params"], trials))
    return summary


def study_summary(study: Any, settings: TuneSettings, storage: str) -> dict[str, Any]:
    """Every trial (number, state, params, value, scores, runs) and the best finished one. ``storage``: its URL, or
    a file name relative to the tuning folder (the default storage, OUT/study.db)."""
    trials = study.get_trials(deepcopy=False)
    rows = []
    for t in trials:
        rows.append({"number": t.number, "state": t.state.name, "params": t.params, "seed": t.user_attrs.get("seed"),
                     "value": None if t.value is None or not math.isfinite(t.value) else t.value,
                     "scores": t.user_attrs.get("scores"), "runs": t.user_attrs.get("runs"),
                     "from_records": bool(t.user_attrs.get("from_records")),
                     "over_budget": bool(t.user_attrs.get("over_budget"))})
    for number, words in _retried(trials).items():
        for row in rows:
            if row["number"] == number and row["state"] == "FAIL":
                row["outcome"] = words
    for t, row in zip(trials, rows):
        if t.user_attrs.get("not_in_records"):  # a placeholder of `import_records`
            row["outcome"] = "a gap: --records holds no run of this trial (it failed or stopped where they were made)"
    finished = [r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None]
    best = None
    if finished:
        pick = min if settings.direction == "minimize" else max
        best = pick(finished, key=lambda r: r["value"])
    return {"format": "srunit-tune/1", "study": settings.study_name, "storage": _shown_storage(storage),
            "settings": settings.to_dict(), "direction": settings.direction, "objective": settings.objective,
            "finished": len(finished), "trials": rows, "best": best, "srunit_version": __version__}


def shown_score(key: str, value: float) -> str:
    """A study's score as its log line and summary table show it: in percent where the report's tables use percent
    (``4.10%``; the log said 0.0410 where the table said 4.10), else as it is (Dist)."""
    return f"{100 * value:.2f}%" if in_percent(key) else f"{value:.4g}"


def _retried(trials: Sequence[Any]) -> dict[int, str]:
    """{number: what became of it} of each trial that failed only to be run again: a stop signal queues its
    parameters as a new trial (user attribute "resumes"), and Optuna queues a trial whose worker died as a new one
    (system attribute "retry_history", whose last entry is the trial it retries; it copies "resumes" too). Such a
    trial read "fail" among the trials that did not finish, as if its parameters had failed."""
    retried = {}
    for t in trials:
        history = t.system_attrs.get("retry_history")
        if isinstance(history, list) and history and isinstance(history[-1], int):
            retried[history[-1]] = f"its worker stopped; run again as trial {t.number}"
        elif isinstance(t.user_attrs.get("resumes"), int):
            retried[t.user_attrs["resumes"]] = f"interrupted; run again as trial {t.number}"
    return retried


def _shown_storage(url: str) -> str:
    """The storage URL without a password."""
    import re

    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def best_preset(settings: TuneSettings, params: dict[str, Any], trials: Trials) -> str:
    """A preset file of the best trial: ``base:`` the tuned preset, with the method options the study fixed on the
    command line (``--method.KEY VALUE``: the trials trained with them) and the tuned values over them (``srunit
    train --preset best.yaml``). The study's other overrides (sizes, lengths) are named in a comment, not set: they
    belong to the tuning target, and a final run chooses its own."""
    import yaml

    from srunit.config import load_config, parse_overrides

    def put(key: str, value: Any) -> None:
        node = nested
        *path, leaf = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value

    nested: dict[str, Any] = {}
    fixed = [o for o in settings.overrides if o.partition("=")[0].strip().startswith("method.")]
    if fixed:  # typed as the config resolves them, not as the command line's strings
        resolved = load_config(settings.preset, fixed).to_dict()
        for key in sorted(_leaf_keys(parse_overrides(fixed))):
            value: Any = resolved
            for part in key.split("."):
                value = value[part]
            put(key, value)
    for key, value in trials.trial_overrides(params).items():
        put(key, value)
    base = read_preset(settings.preset).get("method", {}).get("name")
    others = [o for o in settings.overrides if o not in fixed]
    head = (f"# The best trial of study {settings.study_name!r} ({settings.objective} "
            f"{'lowest' if settings.direction == 'minimize' else 'highest'}), srunit {__version__}.\n"
            f"# Tuned on its target's validation split; a setting tuned there may not carry over to other data.\n")
    if others:
        head += (f"# The trials also trained with {' '.join('--' + o.replace('=', ' ', 1) for o in others)} (sizes "
                 f"and lengths of the tuning runs: not set here).\n")
    body = {"base": settings.preset, **nested}
    if "method" in body and base is not None:
        body["method"] = {"name": base, **body["method"]}
    return head + yaml.safe_dump(body, sort_keys=False)


def _leaf_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys of a nested dict's leaves."""
    out = []
    for k, v in tree.items():
        out.extend(_leaf_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"])
    return out
