"""srunit.engine.speed: the training-speed measurement on tiny settings."""

from __future__ import annotations

import pytest
import torch

from srunit.engine.speed import measure_loader, measure_speed, peak_memory_gib
from srunit.errors import ConfigError

KEYS = {
    "preset",
    "method",
    "size",
    "batch_size",
    "world_size",
    "global_batch_size",
    "device",
    "device_name",
    "threads",
    "precision",
    "compile",
    "channels_last",
    "activation_checkpointing",
    "steps",
    "warmup",
    "warmup_seconds",
    "seconds_per_step",
    "steps_per_s",
    "images_per_s",
    "peak_memory_gib",
    "losses_finite",
    "torch",
}


@pytest.mark.parametrize(("preset", "method"), [("cut", "cut"), ("e1-distancegan", "cut-self-distance")])
def test_measure_speed_reports_positive_throughput(tiny_model_overrides: list[str], preset: str, method: str) -> None:
    # E1: its data statistics come from the benchmark's random images (prepare), its term is on from step 0.
    result = measure_speed(
        preset,
        size=32,
        batch_size=2,
        steps=1,
        warmup=0,
        device="cpu",
        overrides=[*tiny_model_overrides, "method.num_patches=16"],
    )
    assert set(result) == KEYS
    assert (result["preset"], result["method"], result["size"], result["batch_size"]) == (preset, method, 32, 2)
    assert (result["world_size"], result["global_batch_size"]) == (1, 2)  # one process outside torchrun
    assert (result["device"], result["steps"], result["warmup"], result["precision"]) == ("cpu", 1, 0, "fp32")
    assert result["threads"] == torch.get_num_threads() and result["torch"] == torch.__version__
    assert result["seconds_per_step"] > 0 and result["steps_per_s"] > 0
    assert result["images_per_s"] == pytest.approx(2 * result["steps_per_s"])
    assert result["peak_memory_gib"] > 0 and result["losses_finite"] is True


def test_measure_speed_checks_its_arguments_before_building_anything() -> None:
    for kwargs, message in (
        ({"size": 2}, "--size must be an integer from 4 to 65,536, got 2"),
        ({"steps": 0}, "--steps must be an integer from 1 to 1,000,000,000,000, got 0"),
        ({"warmup": -1}, "--warmup must be an integer from 0 to 1,000,000,000,000, got -1"),
        ({"batch_size": 0}, "--batch-size must be an integer from 1 to 65,536, got 0"),
        ({"batch_size": 10**6}, "--batch-size must be an integer from 1 to 65,536, got 1000000"),
    ):
        with pytest.raises(ConfigError, match=message):
            measure_speed("cut", device="cpu", **kwargs)


def test_peak_memory_on_cpu_is_the_process_rss() -> None:
    assert 0 < peak_memory_gib(torch.device("cpu")) < 1024


def test_measure_loader_counts_the_images_it_delivers(tiny_config, tiny_data) -> None:
    config = tiny_config("cut", "train.batch_size=2", data_root=tiny_data)
    result = measure_loader(config, batches=7, warmup=1)  # more batches than one epoch holds: it wraps around
    assert result["images_per_s"] > 0 and (result["batches"], result["batch_size"]) == (7, 2)
    assert (result["num_workers"], result["crop_size"], result["dataset_size"]) == (0, 32, 11)
    with pytest.raises(ConfigError, match="--batches must be an integer from 1 to 1,000,000,000,000, got 0"):
        measure_loader(config, batches=0)
