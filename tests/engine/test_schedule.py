"""srunit.engine.schedule: step budgets and the constant-then-linear-decay learning rate."""

from __future__ import annotations

import re

import pytest

from srunit.engine import Schedule
from srunit.errors import ConfigError
from srunit.options import TrainConfig


def test_schedule_constant_then_linear_decay(tiny_config) -> None:
    s = Schedule(steps_per_epoch=10, total_steps=40, decay_steps=20)
    factors = [s.lr_factor(i) for i in range(40)]
    assert factors[:20] == [1.0] * 20
    assert factors[20] == pytest.approx(1 - 1 / 21) and factors[39] == pytest.approx(1 / 21)
    assert all(a > b for a, b in zip(factors[20:], factors[21:]))
    cfg = tiny_config("cut", "train.epochs=3", "train.epochs_decay=2", "train.batch_size=2")
    sched = Schedule.from_config(cfg.train, dataset_len=9)
    assert (sched.steps_per_epoch, sched.total_steps, sched.decay_steps) == (4, 20, 8)
    cfg = tiny_config("cut", "train.steps=50", "train.decay_fraction=0.2")
    assert Schedule.from_config(cfg.train, dataset_len=9).decay_steps == 10


def test_from_config_refuses_a_batch_larger_than_the_dataset() -> None:
    train = TrainConfig(batch_size=8, steps=10)
    assert Schedule.from_config(train, dataset_len=8).steps_per_epoch == 1  # exactly one batch is fine
    with pytest.raises(ConfigError) as e:
        Schedule.from_config(train, dataset_len=7)
    assert str(e.value) == ("train.batch_size 8 is larger than the dataset (7 images); "
                            "lower train.batch_size to 7 or less")
    with pytest.raises(ConfigError, match=re.escape("train.batch_size 1 is larger than the dataset (0 images)")):
        Schedule.from_config(TrainConfig(), dataset_len=0)


def test_constant_schedule_keeps_the_base_rate() -> None:
    s = Schedule.constant(7)
    assert (s.total_steps, s.decay_steps) == (7, 0) and s.steps_per_epoch >= 1
    assert [s.lr_factor(i) for i in range(7)] == [1.0] * 7
    assert Schedule.constant(0).steps_per_epoch == 1  # never a zero-length epoch


def test_decay_to_zero_ends_above_zero_and_the_whole_run_can_decay() -> None:
    s = Schedule(steps_per_epoch=1, total_steps=4, decay_steps=4)
    assert [s.lr_factor(i) for i in range(4)] == pytest.approx([4 / 5, 3 / 5, 2 / 5, 1 / 5])
    assert s.lr_factor(10) == 0.0  # past the end: clamped at zero, never negative
