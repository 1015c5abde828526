"""Advice that is right: each message names only what the command has, and proposes what the user has not done yet."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from srunit.errors import ConfigError
from srunit.export import DEFAULT_OPSET, _write_onnx


class _Unexportable(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft2(x).real  # no ONNX symbolic: the exporter fails and prints the Torch IR graph


def test_a_failed_onnx_export_is_one_short_line_without_the_ir_dump(tmp_path: Path,
                                                                    capfd: pytest.CaptureFixture) -> None:
    with pytest.raises(ConfigError) as e:
        _write_onnx(_Unexportable(), (torch.rand(1, 3, 8, 8),), tmp_path / "g.onnx", DEFAULT_OPSET, False, {})
    message = str(e.value)
    assert "\n" not in message and len(message) < 500
    assert "fft" in message and f"opset {DEFAULT_OPSET} failed" in message  # the cause, the opset used
    assert "try the default --opset" not in message and "--format export" in message  # not what it just did
    assert "IR graph" not in capfd.readouterr().err  # the dump goes to the debug log only


def test_a_disk_full_onnx_export_says_disk_full_not_opset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise RuntimeError("PytorchStreamWriter failed writing file: No space left on device")

    monkeypatch.setattr(torch.onnx, "export", full)
    with pytest.raises(OSError) as e:
        _write_onnx(_Unexportable(), (torch.rand(1, 3, 8, 8),), tmp_path / "g.onnx", DEFAULT_OPSET, False, {})
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(tmp_path / "g.onnx")
    assert "opset" not in str(e.value)
