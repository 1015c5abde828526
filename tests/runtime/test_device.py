"""srunit.runtime.device: device names, precisions and autocast."""

from __future__ import annotations

import contextlib
import re

import pytest
import torch

from srunit.checks import PRECISIONS
from srunit.errors import ConfigError
from srunit.runtime.device import PRECISION_DTYPES, autocast, precision_dtype, resolve_device


def test_resolve_device_names() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("option", ["train.device", "--device"])
def test_resolve_device_errors_name_the_option(option: str) -> None:
    with pytest.raises(ConfigError) as e:
        resolve_device("nonsense", option)
    assert str(e.value) == f"{option}: invalid value 'nonsense'; allowed: auto, cpu, cuda, cuda:N, mps, xpu, xpu:N"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=re.escape(f"{option} is 'cuda:0' but CUDA is not available here; "
                                                        f"use {option} cpu or auto")):
            resolve_device("cuda:0", option)


def test_default_option_name_is_train_device() -> None:
    with pytest.raises(ConfigError, match=r"^train\.device: invalid value 'gpu'"):
        resolve_device("gpu")


def test_precision_dtype() -> None:
    assert precision_dtype("fp32") is torch.float32
    assert precision_dtype("bf16") is torch.bfloat16
    assert precision_dtype("fp16") is torch.float16
    assert tuple(PRECISION_DTYPES) == PRECISIONS
    with pytest.raises(
        ConfigError, match=re.escape("train.precision: invalid value 'fp64'; allowed: fp32, bf16, fp16")
    ):
        precision_dtype("fp64")
    with pytest.raises(ConfigError, match=r"^--precision: invalid value 'int8'"):
        precision_dtype("int8", "--precision")


def test_autocast_is_a_no_op_in_fp32_and_casts_otherwise() -> None:
    cpu = torch.device("cpu")
    assert isinstance(autocast(cpu, "fp32"), contextlib.nullcontext)
    a, b = torch.ones(2, 2), torch.ones(2, 2)
    with autocast(cpu, "fp32"):
        assert (a @ b).dtype == torch.float32
    with autocast(cpu, "bf16"):
        assert (a @ b).dtype == torch.bfloat16


@pytest.mark.parametrize("name", ["mps", "xpu", "xpu:1"])
def test_devices_this_torch_build_lacks_are_refused_by_name(name: str) -> None:
    """mps and xpu are device types torch parses on every build; where the build or machine has none, the
    first tensor on them used to raise NotImplementedError or AssertionError deep inside the trainer."""
    from srunit.runtime.device import device_available

    if device_available(name.partition(":")[0]):
        pytest.skip(f"this machine has {name}")
    with pytest.raises(ConfigError, match=rf"^--device is '{name}' but .* is not available here; use --device cpu"):
        resolve_device(name, "--device")


@pytest.mark.parametrize("name", ["meta", "hpu", "privateuseone", "mps:1", "cpu:0", "cuda:-1", "cuda:\u0661"])
def test_device_names_srunit_does_not_compute_on_are_refused_in_the_config(name: str) -> None:
    from srunit.options import TrainConfig

    with pytest.raises(ConfigError, match=r"^train\.device: invalid value .*; allowed: auto, cpu, cuda, cuda:N, mps"):
        TrainConfig(device=name)
