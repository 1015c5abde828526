"""srunit.engine.trainer: run folders, interrupted runs (fit(stop_at)) and exact resume for every preset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from srunit.config import preset_names
from srunit.engine import Trainer
from srunit.errors import ConfigError

RUN = ["train.log_every=1", "train.sample_every=2", "train.checkpoint_every=1", "train.keep_every=100"]


# One preset per code path a resume must restore: CUT with its noise and added terms (srunit, which runs all of
# CUT's), one-layer sampling and the D-only warm-up (srunit-official), image pools (cyclegan) and DRIT in the fast
# tier; CUT alone, statistics computed before step 0 (e1) and flips (fastcut) in the full suite, with the presets
# that are CUT with another term, and GcGAN (CycleGAN's pools with another pairing).
FAMILIES = {"srunit", "srunit-official", "cyclegan", "drit"}


@pytest.mark.parametrize("preset", [p if p in FAMILIES else pytest.param(p, marks=pytest.mark.slow)
                                    for p in preset_names()])
def test_resume_continues_bit_for_bit(tiny_config, latest_weights, tiny_data: Path, tmp_path: Path,
                                      preset: str) -> None:
    extra = [*RUN, "train.steps=4", "train.batch_size=2", "data.num_workers=0"]
    straight = Trainer(tiny_config(preset, *extra, "train.name=straight", data_root=tiny_data, runs_dir=tmp_path),
                       show_progress=False).fit()
    first = Trainer(tiny_config(preset, *extra, "train.name=split", data_root=tiny_data, runs_dir=tmp_path),
                    show_progress=False)
    assert first.schedule.total_steps == 4 and first.schedule.steps_per_epoch > 2  # interrupted mid-epoch
    # Stop after 2 of the 4 steps, as an interrupted run would: checkpointed at step 2.
    assert first.fit(stop_at=2) == tmp_path / "split"
    assert first.step == 2
    assert (tmp_path / "split" / "checkpoints" / "latest").resolve().name == "step_00000002"
    resumed = Trainer.resume(tmp_path / "split", show_progress=False)
    assert resumed.step == 2
    resumed.fit()
    assert resumed.step == 4
    assert (tmp_path / "split" / "checkpoints" / "latest").resolve().name == "step_00000004"
    a, b = latest_weights(straight), latest_weights(tmp_path / "split")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted one"


def test_run_folder_contents_and_no_overwrite(tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config("cut", *RUN, "train.steps=3", "train.name=r", data_root=tiny_data, runs_dir=tmp_path)
    run_dir = Trainer(cfg, show_progress=False).fit()
    for name in ("config.yaml", "run.json", "metrics.jsonl", "samples/step_00000002.png", "tensorboard"):
        assert (run_dir / name).exists(), name
    latest = run_dir / "checkpoints" / "latest"
    assert latest.is_symlink() and latest.resolve().name == "step_00000003"
    assert {p.name for p in latest.iterdir()} == {"G.safetensors", "D.safetensors", "F.safetensors", "state.pt", "KEEP"}
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("step_*")) == ["step_00000003"]  # unkept pruned
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and '"images_per_s"' in lines[0]
    before = (run_dir / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(cfg, show_progress=False)
    assert (run_dir / "config.yaml").read_text() == before


def test_stop_at_beyond_the_end_trains_to_the_end(tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config("cut", "train.steps=2", "train.name=s", data_root=tiny_data, runs_dir=tmp_path)
    trainer = Trainer(cfg, show_progress=False)
    trainer.fit(stop_at=50)
    assert trainer.step == 2
    assert (tmp_path / "s" / "checkpoints" / "latest").resolve().name == "step_00000002"


def test_batch_larger_than_the_dataset_is_refused_before_anything_is_written(tiny_config, tiny_data: Path,
                                                                            tmp_path: Path) -> None:
    cfg = tiny_config("cut", "train.batch_size=64", "train.name=big", data_root=tiny_data, runs_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"train.batch_size 64 is larger than the dataset \(\d+ images\)"):
        Trainer(cfg, show_progress=False)
    assert not (tmp_path / "big").exists()


def test_resume_rejects_non_train_overrides(tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config("cut", *RUN, "train.steps=1", "train.name=o", data_root=tiny_data, runs_dir=tmp_path)
    run_dir = Trainer(cfg, show_progress=False).fit()
    with pytest.raises(ConfigError, match="only train"):
        Trainer.resume(run_dir, ["model.ngf=8"])
    with pytest.raises(Exception, match="not a run folder"):
        Trainer.resume(tmp_path / "nothing-here")


def test_resume_with_a_full_image_pool_continues_bit_for_bit(tiny_config, latest_weights, tiny_data: Path,
                                                             tmp_path: Path) -> None:
    """CycleGAN with pools of 3 and batches of 2: the pools fill during step 2 (whose last image already
    meets a full pool) and swap images from then on; the run is interrupted after step 2."""
    extra = [*RUN, "train.steps=4", "train.batch_size=2", "method.pool_size=3"]
    straight = Trainer(tiny_config("cyclegan", *extra, "train.name=straight", data_root=tiny_data,
                                   runs_dir=tmp_path), show_progress=False)
    straight.fit()
    first = Trainer(tiny_config("cyclegan", *extra, "train.name=split", data_root=tiny_data, runs_dir=tmp_path),
                    show_progress=False)
    first.fit(stop_at=2)
    saved = torch.load(tmp_path / "split" / "checkpoints" / "latest" / "state.pt", weights_only=True)
    assert {name: pool["count"] for name, pool in saved["method"]["pools"].items()} == {"A": 3, "B": 3}
    resumed = Trainer.resume(tmp_path / "split", show_progress=False)
    assert torch.equal(resumed.method.pools["B"].images, first.method.pools["B"].images)
    resumed.fit()
    a, b = latest_weights(tmp_path / "straight"), latest_weights(tmp_path / "split")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged from the uninterrupted one"
    for name in ("A", "B"):
        assert torch.equal(straight.method.pools[name].images, resumed.method.pools[name].images)
    # Images were swapped after the interruption, so the restored pools were used.
    assert any(not torch.equal(straight.method.pools[n].images, first.method.pools[n].images) for n in ("A", "B"))
