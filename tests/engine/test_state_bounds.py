"""A training state (state.pt) whose sizes are forged (issue 24, part 2): empty tensors of a huge shape and counts
beyond the pool are refused from the sizes the run itself defines, before anything is allocated."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from srunit.engine import Trainer
from srunit.errors import CheckpointError
from srunit.methods.pool import ImagePool


def test_an_image_pool_state_with_forged_sizes_is_refused_before_allocating() -> None:
    pool = ImagePool(4)
    huge_empty = torch.zeros(0, 3, 10**6, 10**6)  # no bytes, but new_zeros((4, 3, 10**6, 10**6)) would be 48 TB
    with pytest.raises(ValueError, match="holds .* not 1 images"):
        pool.load_state_dict({"size": 4, "count": 1, "images": huge_empty})
    with pytest.raises(ValueError, match="count must be an integer from 0 to 4, got 5"):
        pool.load_state_dict({"size": 4, "count": 5, "images": torch.zeros(5, 3, 2, 2)})
    pool.load_state_dict({"size": 4, "count": 0, "images": huge_empty})  # nothing held: nothing allocated
    assert pool.images is None and pool.count == 0
    pool.load_state_dict({"size": 4, "count": 2, "images": torch.ones(2, 3, 2, 2)})
    assert pool.images is not None and pool.images.shape == (4, 3, 2, 2) and pool.images[:2].eq(1).all()


def test_an_optimizer_state_with_a_forged_empty_tensor_is_a_one_line_error_on_resume(
        tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config("cut", "train.steps=1", "train.checkpoint_every=1", "train.name=run", data_root=tiny_data,
                      runs_dir=tmp_path)
    run = Path(Trainer(cfg, show_progress=False).fit())
    state_file = run / "checkpoints" / "latest" / "state.pt"
    state = torch.load(state_file, weights_only=True)
    name = next(iter(state["optimizers"]))
    first = next(iter(state["optimizers"][name]["state"]))
    state["optimizers"][name]["state"][first]["exp_avg"] = torch.zeros(0, 10**9)
    torch.save(state, state_file)
    with pytest.raises(CheckpointError, match=r"state.pt does not fit this run \(ValueError: optimizer .*saved exp_avg "
                                              r"has shape \(0, 1000000000\)"):
        Trainer.resume(run, ["train.steps=2"], show_progress=False)
