"""srunit.engine.checkpoint: atomic checkpoints, pruning, resolving paths, and a crash while saving."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from srunit.engine import Trainer
from srunit.engine import checkpoint as ckpt_mod
from srunit.engine.checkpoint import load_training_state, save_checkpoint
from srunit.errors import CheckpointError
from srunit.runtime.network_files import load_network_weights, read_network_metadata, save_network
from srunit.runtime.run_folder import resolve_checkpoint

RUN = ["train.log_every=1", "train.sample_every=2", "train.checkpoint_every=1", "train.keep_every=100"]


class Tiny(nn.Linear):
    def __init__(self, seed: int = 0) -> None:
        super().__init__(2, 3)
        self.config = {"in_features": 2, "out_features": 3}
        with torch.no_grad():
            self.weight.copy_(torch.arange(6.0).reshape(3, 2) + seed)


def test_save_checkpoint_points_latest_and_prunes_unkept(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    save_checkpoint(root, 1, {"N": Tiny(1)}, {"step": 1}, keep=True)
    save_checkpoint(root, 2, {"N": Tiny(2)}, {"step": 2}, keep=False)
    final = save_checkpoint(root, 3, {"N": Tiny(3)}, {"step": 3}, keep=False)
    assert final == root / "step_00000003"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_00000001", "step_00000003"]  # 2 pruned
    assert os.readlink(root / "latest") == "step_00000003"  # relative, so the run folder can move
    assert load_training_state(final) == {"step": 3}
    assert torch.equal(load_file(str(final / "N.safetensors"))["weight"], torch.arange(6.0).reshape(3, 2) + 3)
    again = save_checkpoint(root, 3, {"N": Tiny(4)}, {"step": 3}, keep=False)  # the same step saved twice
    assert torch.equal(load_file(str(again / "N.safetensors"))["weight"], torch.arange(6.0).reshape(3, 2) + 4)
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_network_files_and_their_metadata(tmp_path: Path) -> None:
    path = tmp_path / "N.safetensors"
    save_network(Tiny(5), path, "Tiny")
    assert read_network_metadata(path) == {"network": "Tiny", "config": {"in_features": 2, "out_features": 3},
                                           "shapes": {"weight": (3, 2), "bias": (3,)}}
    net = Tiny(0)
    load_network_weights(net, path)
    assert torch.equal(net.weight, Tiny(5).weight)
    with pytest.raises(CheckpointError, match="does not match the network"):
        load_network_weights(nn.Linear(3, 3), path)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(1)}, str(foreign))
    with pytest.raises(CheckpointError, match="not an srunit network"):
        read_network_metadata(foreign)


def test_resolve_checkpoint_and_damaged_state(tmp_path: Path) -> None:
    run = tmp_path / "run"
    step = save_checkpoint(run / "checkpoints", 7, {"N": Tiny()}, {"step": 7}, keep=True)
    for path in (run, run / "checkpoints", run / "checkpoints" / "latest", step):
        assert resolve_checkpoint(path) == step.resolve()
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        resolve_checkpoint(tmp_path / "empty")
    (step / "state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"(?s)could not be read.*use an earlier step_N"):
        load_training_state(step)


def test_crash_while_saving_keeps_the_previous_checkpoint(tiny_config, latest_weights, tiny_data: Path,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny_config("cut", *RUN, "train.steps=2", "train.name=c", data_root=tiny_data, runs_dir=tmp_path)
    trainer = Trainer(cfg, show_progress=False)
    run_dir = trainer.fit()
    good = latest_weights(run_dir)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        trainer.save(keep=False)
    monkeypatch.undo()
    assert (run_dir / "checkpoints" / "latest").resolve().name == "step_00000002"
    after = latest_weights(run_dir)
    assert all(torch.equal(good[k], after[k]) for k in good)
    resumed = Trainer.resume(run_dir, ["train.steps=3"], show_progress=False)
    assert resumed.step == 2
    resumed.fit()
    assert (run_dir / "checkpoints" / "latest").resolve().name == "step_00000003"


def test_network_files_are_deterministic_bytes_and_mode_0644(tmp_path: Path) -> None:
    import stat

    from safetensors.torch import load_file

    from srunit.networks import ResnetGenerator
    from srunit.runtime.network_files import read_network_metadata, save_network

    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=2)
    blobs = []
    for i in range(6):  # safetensors writes its metadata map in hash order, which varies between calls
        save_network(g, tmp_path / f"G{i}.safetensors", "ResnetGenerator")
        blobs.append((tmp_path / f"G{i}.safetensors").read_bytes())
    assert len(set(blobs)) == 1
    path = tmp_path / "G0.safetensors"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert read_network_metadata(path)["network"] == "ResnetGenerator"
    loaded = load_file(str(path))
    assert loaded.keys() == g.state_dict().keys() and all(torch.equal(loaded[k], v) for k, v in g.state_dict().items())
    assert int.from_bytes(blobs[0][:8], "little") % 8 == 0
