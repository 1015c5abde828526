"""Damaged or wrong checkpoint files give a CheckpointError naming the file and the fix, never a traceback
(issue 10 item 8): for translate's loader and for --resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from srunit.engine import Trainer
from srunit.errors import CheckpointError
from srunit.inference import load_generator
from srunit.networks import PatchDiscriminator, ResnetGenerator
from srunit.runtime.network_files import save_network
from srunit.runtime.run_folder import LATEST


@pytest.fixture
def generator_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "G.safetensors"
    save_network(ResnetGenerator(ngf=4, n_blocks=2), path, "ResnetGenerator")
    return path


def _with_metadata(src: Path, dst: Path, config: str) -> Path:
    save_file(load_file(str(src)), str(dst), metadata={"format": "srunit", "network": "ResnetGenerator",
                                                        "config": config})
    return dst


@pytest.mark.parametrize(("case", "message"), [
    ("text", "is not a readable safetensors file"),
    ("truncated", "is not a readable safetensors file"),
    ("discriminator", "holds a PatchDiscriminator, which does not translate images; give the generator's file"),
    ("bad-json", "its metadata 'config' is not valid JSON"),
    ("absurd-width", "ngf = 10000000 in its metadata config is more than the file's tensors can hold"),
    ("absurd-depth", "n_blocks = 1000000000 in its metadata config is more than"),
    ("huge-integer", "ngf = 1000000000000000000000000000000 in its metadata config is more than"),
    ("negative-width", "ngf = -4 in its metadata config is below 0"),
    ("10000-digits", "its metadata 'config' is not valid JSON (Exceeds the limit (4300 digits)"),
    ("no-blocks", "it has no residual blocks"),
    ("missing-keys", "is not a complete ResnetGenerator of the public CUT/SRUNIT/CycleGAN code"),
])
def test_damaged_generator_files_are_named_errors(generator_file: Path, tmp_path: Path, case: str,
                                                  message: str) -> None:
    path = tmp_path / f"{case}.safetensors"
    if case == "text":
        path.write_text("hello")
    elif case == "truncated":
        path.write_bytes(generator_file.read_bytes()[:-500])
    elif case == "discriminator":
        save_network(PatchDiscriminator(ndf=4, n_layers=1), path, "PatchDiscriminator")
    elif case == "bad-json":
        _with_metadata(generator_file, path, "{not json")
    elif case == "absurd-width":  # would allocate ~7e15 bytes if built before checking
        _with_metadata(generator_file, path, json.dumps({"ngf": 10**7, "n_blocks": 9}))
    elif case == "absurd-depth":  # a billion blocks: building them takes hours even on the meta device
        _with_metadata(generator_file, path, json.dumps({"ngf": 4, "n_blocks": 10**9}))
    elif case == "huge-integer":
        _with_metadata(generator_file, path, json.dumps({"ngf": 10**30, "n_blocks": 9}))
    elif case == "10000-digits":
        _with_metadata(generator_file, path, '{"ngf": ' + "4" * 10_000 + ', "n_blocks": 9}')
    elif case == "negative-width":
        _with_metadata(generator_file, path, json.dumps({"ngf": -4, "n_blocks": 9}))
    else:
        state = {k.replace("layers.", "model."): v for k, v in load_file(str(generator_file)).items()}
        if case == "no-blocks":
            state = {k: v for k, v in state.items() if "conv_block" not in k}
        else:
            del state[sorted(k for k in state if "conv_block" in k)[0]]
        path = tmp_path / f"{case}_net_G.pth"
        torch.save(state, path)
    with pytest.raises(CheckpointError, match=re.escape(message)) as err:
        load_generator(path)
    assert str(path) in str(err.value)


def _with_state(ckpt: Path, **changes: object) -> None:
    state = torch.load(ckpt / "state.pt", weights_only=True)
    torch.save({**state, **changes}, ckpt / "state.pt")


def test_resume_with_damaged_run_files_is_a_named_error(tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config("cut", "train.steps=2", "train.checkpoint_every=2", "train.name=r", data_root=tiny_data,
                      runs_dir=tmp_path)
    run = Trainer(cfg, show_progress=False).fit()
    ckpt = (run / "checkpoints" / LATEST).resolve()
    config_text = (run / "config.yaml").read_text()
    cases = [
        (lambda: (run / "config.yaml").write_text(""), "config.yaml must hold the run's config", "config.yaml"),
        (lambda: (run / "config.yaml").write_text("[1, 2]\n"), "got list", "config.yaml"),
        (lambda: torch.save({"foo": 1}, ckpt / "state.pt"), "is not a training state of srunit (no step, optimizers)",
         "state.pt"),
        (lambda: (ckpt / "D.safetensors").unlink(), "does not exist", "D.safetensors"),
        (lambda: _with_state(ckpt, step="2"), "its step must be an integer from 0 to", "state.pt"),
        (lambda: _with_state(ckpt, step=-2), "its step must be an integer from 0 to", "state.pt"),
        (lambda: _with_state(ckpt, step=10**30), "its step must be an integer from 0 to", "state.pt"),
        (lambda: _with_state(ckpt, optimizers=[1]), "its optimizers must be a mapping", "state.pt"),
        (lambda: (run / "config.yaml").write_text(config_text + "train:\n  lr: 0.1\n"),
         "the key 'train' appears twice", "config.yaml"),
        (lambda: (ckpt / "G.safetensors").write_bytes((ckpt / "G.safetensors").read_bytes()[:-300]),
         "is not a readable safetensors file", "G.safetensors"),
    ]
    for damage, message, name in cases:
        backup = {p.name: p.read_bytes() for p in ckpt.iterdir() if p.is_file()}
        damage()
        with pytest.raises(CheckpointError, match=re.escape(message)) as err:
            Trainer.resume(run, ["train.steps=3"], show_progress=False)
        assert name in str(err.value)
        (run / "config.yaml").write_text(config_text)
        for file_name, data in backup.items():
            (ckpt / file_name).write_bytes(data)
