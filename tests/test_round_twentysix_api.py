"""Round twenty-six (A): the Python API as its reference pages describe it, called as written and as a hostile caller
would call it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from srunit.config import Config
from srunit.errors import ConfigError


class _Unexportable(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft2(x).real  # no ONNX symbolic: the exporter fails and dumps its Torch IR graph


def test_a_failed_onnx_export_prints_no_ir_graph_on_standard_output(tmp_path: Path,
                                                                     capfd: pytest.CaptureFixture) -> None:
    """`export_generator(run, "g.onnx", opset=999)` (or any failed ONNX export) raised the one-line error, but the
    exporter's C++ side first printed the whole Torch IR graph, a hundred lines and more, on standard output, which
    srunit held back from standard error only: `srunit export ... > out.txt` filled the file with it."""
    from srunit.export import DEFAULT_OPSET, _write_onnx

    with pytest.raises(ConfigError, match=f"opset {DEFAULT_OPSET} failed"):
        _write_onnx(_Unexportable(), (torch.rand(1, 3, 8, 8),), tmp_path / "g.onnx", DEFAULT_OPSET, False, {})
    out, err = capfd.readouterr()
    assert "IR graph" not in out and "IR graph" not in err
    assert not (tmp_path / "g.onnx").exists()


def _latest(run: Path) -> str:
    return os.readlink(run / "checkpoints" / "latest")


@pytest.mark.slow
def test_a_trainer_that_released_its_run_cannot_move_it_back(tiny_config: Callable[..., Config], tiny_data: Path,
                                                             tmp_path: Path) -> None:
    """A Trainer whose `fit()` had ended (the run released) kept its networks at that step: another Trainer resumed
    the run and trained it on, and the first one's `save(keep=False)` then rewrote its own old step and pointed
    `latest` back at it, even while the second held the run's lock; its `fit()` trained on from its old step. Both
    now take the run again only where it is as this Trainer left it."""
    from srunit import Trainer

    config = tiny_config("cut", "train.steps=2", "train.name=r", data_root=tiny_data, runs_dir=tmp_path)
    first = Trainer(config, show_progress=False)
    run = first.fit()
    first.save(keep=False)  # the run is where it left it: allowed, as before
    assert _latest(run) == "step_00000002"
    Trainer.resume(run, ["train.steps=3"], show_progress=False).fit()
    assert _latest(run) == "step_00000003"
    saved = (run / "checkpoints" / "step_00000003" / "G.safetensors").read_bytes()
    holder = Trainer.resume(run, ["train.steps=4"], show_progress=False)  # holds the run's lock
    for call in (lambda: first.save(keep=False), lambda: first.fit()):
        with pytest.raises(ConfigError, match="is held by another Trainer of this process"):
            call()
    holder.release()
    for call in (lambda: first.save(keep=True), lambda: first.fit(stop_at=3), lambda: first.fit()):
        with pytest.raises(ConfigError) as err:
            call()
        text = str(err.value)
        assert "\n" not in text and "at step 3" in text and "at step 2" in text and "Trainer.resume(" in text, text
    assert _latest(run) == "step_00000003"
    assert (run / "checkpoints" / "step_00000003" / "G.safetensors").read_bytes() == saved
    assert Trainer.resume(run, show_progress=False).fit() == run  # the run itself is untouched, and not locked
