"""srunit.engine.loggers: every tracker gets the same scalars and sample image, in its local mode."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from srunit.engine.loggers import open_loggers
from srunit.errors import ConfigError

CONFIG = {"method": {"name": "cut"}, "train": {"lr": 2e-4, "seed": 0}}
IMAGE = np.zeros((8, 12, 3), np.uint8)
IMAGE[:, :6] = 255


def _log_twice(name: str, run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for step in (1, 2):  # the second session continues the same tracker run, as a resume does
        [logger] = open_loggers([name], run_dir, "r", CONFIG)
        logger.log_scalars(step, {"G": step + 0.5, "D": 0.25})
        logger.log_image(step, "samples/real_A|fake_B", IMAGE)
        logger.close()


def test_tensorboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _log_twice("tensorboard", tmp_path, monkeypatch)
    values = {}
    for events in sorted((tmp_path / "tensorboard").iterdir()):
        acc = EventAccumulator(str(events))
        acc.Reload()
        values.update({e.step: e.value for e in acc.Scalars("train/G")})
        assert acc.Images("samples/real_A|fake_B")[0].width == 12
    assert values == {1: 1.5, 2: 2.5}



def test_tensorboard_hides_what_a_killed_attempt_logged_after_the_checkpoint(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    [killed] = open_loggers(["tensorboard"], tmp_path, "r", CONFIG)
    for step in (1, 2, 3, 4):  # checkpointed at step 2, then killed after logging 3 and 4
        killed.log_scalars(step, {"G": float(step)})
    killed.close()
    [resumed] = open_loggers(["tensorboard"], tmp_path, "r", CONFIG, start_step=2)
    for step in (3, 4):
        resumed.log_scalars(step, {"G": 10.0 + step})
    resumed.close()
    acc = EventAccumulator(str(tmp_path / "tensorboard"))  # the folder, as TensorBoard reads a run
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/G")] == [(1, 1.0), (2, 2.0), (3, 13.0), (4, 14.0)]


def test_a_session_resumed_within_the_second_sorts_after_the_one_before(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorBoard reads event files in the order of their names (SECONDS.HOST.PID.N): with both sessions in one
    second and the writers' counter at 9 and 10, ".10" sorted first and the killed attempt's steps 3 and 4 showed
    again. The clock here stands still but for sleeps; the new session waits for the next second."""
    from tensorboard.summary.writer import event_file_writer

    from srunit.engine import loggers

    class Clock:
        now = 1_800_000_000.25

        @classmethod
        def time(cls) -> float:
            return cls.now

        @classmethod
        def sleep(cls, seconds: float) -> None:
            cls.now += seconds

    monkeypatch.setattr(event_file_writer, "time", Clock)
    monkeypatch.setattr(loggers, "time", Clock)
    counter = event_file_writer._global_uid
    while set(str(counter._value)) != {"9"}:  # the next two writers' counters: 9 and 10 (or 99 and 100 ...)
        counter.get()
    test_tensorboard_hides_what_a_killed_attempt_logged_after_the_checkpoint(tmp_path)
    assert Clock.now == 1_800_000_001.0  # waited 0.75 s, once


def test_a_resumed_trainer_opens_its_trackers_at_the_step_it_continues_from(tiny_config, tiny_data: Path,
                                                                           tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from srunit.engine import Trainer
    from srunit.engine import trainer as trainer_module

    starts: list[int] = []
    real = trainer_module.open_loggers
    monkeypatch.setattr(trainer_module, "open_loggers",
                        lambda *a, **k: starts.append(a[4]) or real(*a, **k))
    config = tiny_config("cut", "train.steps=3", "train.log_every=1", "train.checkpoint_every=1", "train.name=r",
                         data_root=tiny_data, runs_dir=tmp_path)
    run = Trainer(config, show_progress=False).fit(stop_at=2)
    Trainer.resume(run, show_progress=False).fit()
    assert starts == [0, 2]

@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="the mlflow extra is not installed")
@pytest.mark.slow  # the tracker's own start-up
def test_mlflow_local_store_and_one_run_across_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from mlflow.tracking import MlflowClient

    _log_twice("mlflow", tmp_path, monkeypatch)
    run_id = (tmp_path / "mlruns" / "run_id").read_text().strip()
    client = MlflowClient((tmp_path / "mlruns").resolve().as_uri())
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "train/G")] == [(1, 1.5), (2, 2.5)]
    assert client.get_run(run_id).data.params["train.lr"] == "0.0002"
    assert [a.path for a in client.list_artifacts(run_id)] == ["images"]


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="the wandb extra is not installed")
@pytest.mark.slow  # the tracker's own start-up
def test_wandb_offline_and_one_run_across_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    _log_twice("wandb", tmp_path, monkeypatch)
    import wandb

    wandb.teardown()  # finish() can return before W&B's service process has written the last records
    run_id = (tmp_path / "wandb" / "run_id").read_text().strip()
    # offline-run-DATE_TIME-ID, with "-1" added when both sessions start within the same second
    runs = sorted(p for p in (tmp_path / "wandb").glob("offline-run-*") if p.name.split("-")[3] == run_id)
    assert len(runs) == 2  # one folder per session, the same W&B run id
    records = b"".join(f.read_bytes() for run in runs for f in run.glob("*.wandb"))
    # The history records hold each key with its value as JSON text.
    assert b"train/G" in records and b"1.5" in records and b"2.5" in records
    assert len(list(runs[0].glob("files/media/images/**/*.png"))) == 1  # the tag's "/" makes a folder


def test_unknown_or_missing_tracker_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="train.loggers: unknown logger 'neptune'"):
        open_loggers(["neptune"], tmp_path, "r", CONFIG)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(
        ConfigError, match=r"needs the wandb package, which is not installed; pip install 'srunit\[wandb\]'"
    ):
        open_loggers(["wandb"], tmp_path, "r", CONFIG)


@pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None or importlib.util.find_spec("wandb") is None,
    reason="the wandb and mlflow extras are not installed",
)
@pytest.mark.slow  # the trackers' own start-ups (W&B's service process, MLflow's store): out of the fast tier
def test_training_logs_the_same_scalars_to_every_tracker(
    tiny_config, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from srunit.engine import Trainer

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = tiny_config(
        "cut",
        "train.steps=2",
        "train.log_every=1",
        "train.sample_every=2",
        "train.name=t",
        "train.loggers=[tensorboard, wandb, mlflow]",
        data_root=tiny_data,
        runs_dir=tmp_path,
    )
    run = Trainer(config, show_progress=False).fit()
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    nce = {r["step"]: r["NCE"] for r in logged}
    [events] = list((run / "tensorboard").iterdir())
    acc = EventAccumulator(str(events))
    acc.Reload()
    assert {e.step: e.value for e in acc.Scalars("train/NCE")} == pytest.approx(nce)
    assert len(acc.Images("samples/real_A|fake_B|real_B|idt_B")) == 1
    client = MlflowClient((run / "mlruns").resolve().as_uri())
    run_id = (run / "mlruns" / "run_id").read_text().strip()
    assert {m.step: m.value for m in client.get_metric_history(run_id, "train/NCE")} == pytest.approx(nce)
    records = b"".join(f.read_bytes() for f in (run / "wandb").glob("offline-run-*/*.wandb"))
    assert b"train/NCE" in records


@pytest.mark.parametrize("tracker", ["wandb-without-key", "wandb-not-installed", "mlflow-not-installed"])
def test_a_tracker_that_cannot_start_fails_before_the_run_folder_is_made(
        tracker: str, tiny_config, tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from srunit.engine import Trainer

    name, _, why = tracker.partition("-")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc: no `wandb login`
    for var in ("WANDB_API_KEY", "WANDB_MODE", "NETRC", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    if why == "not-installed":
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda pkg, *a: None if pkg == name else real(pkg, *a))
    elif importlib.util.find_spec("wandb") is None:
        pytest.skip("the wandb extra is not installed")
    config = tiny_config("cut", "train.steps=1", "train.name=t", f"train.loggers=[tensorboard, {name}]",
                         data_root=tiny_data, runs_dir=tmp_path / "runs")
    says = "no API key is set here" if why == "without-key" else f"needs the {name} package, which is not installed"
    with pytest.raises(ConfigError, match=f"train.loggers {name}.*{says}"):
        Trainer(config, show_progress=False)
    assert not (tmp_path / "runs").exists()


def test_wandb_key_from_the_environment_or_a_login_or_offline_mode_is_enough(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from srunit.engine.loggers import _wandb_key_missing

    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("WANDB_API_KEY", "WANDB_MODE", "NETRC", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    assert _wandb_key_missing()
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert not _wandb_key_missing()
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert _wandb_key_missing()
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert not _wandb_key_missing()


def test_a_tracker_whose_start_raises_is_named_in_a_config_error(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from srunit.engine import loggers

    def broken(*args: object) -> None:
        raise RuntimeError("connection refused")

    monkeypatch.setitem(loggers._LOGGERS, "mlflow", (broken, "mlflow", "mlflow"))
    with pytest.raises(ConfigError, match=r"train.loggers mlflow: the tracker could not start \(RuntimeError: "
                                          r"connection refused\)"):
        open_loggers(["tensorboard", "mlflow"], tmp_path, "r", CONFIG)
