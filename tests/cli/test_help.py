"""`srunit --help`, every command's help, and the installed console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from srunit.cli.main import main


def test_help_lists_every_subcommand_and_config_key(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("train", "translate", "demo", "bench", "eval", "data", "report", "app"):
        assert cmd in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for key in ("--train.batch_size", "--data.root", "--method.robust.weight", "--model.feature_layers",
                "--method.nce_negatives"):
        assert key in out
    assert "beta, the coefficient" in out  # field comments become help text
    for cmd in ("translate", "demo", "bench speed", "bench synthscapes", "report", "data synthscapes", "app"):
        with pytest.raises(SystemExit):
            main([*cmd.split(), "--help"])
        assert "usage: srunit " + cmd in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "srunit"
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("srunit ")


@pytest.mark.parametrize("command", ["translate", "app"])
def test_the_checkpoint_help_names_every_kind_of_file_export_writes(command: str, capsys: pytest.CaptureFixture
                                                                    ) -> None:
    """translate and app read every format of `srunit export` and the public CycleGAN files; translate's help
    named .onnx and .ts, not .pt2, and app's none of them."""
    from srunit.runtime.run_folder import ONNX_SUFFIX, PROGRAM_SUFFIX, TORCHSCRIPT_SUFFIXES

    with pytest.raises(SystemExit):
        main([command, "--help"])
    options = " ".join(capsys.readouterr().out.split()).split("options:", 1)[1]
    checkpoint_help = options.split("--checkpoint", 1)[1].split("--direction", 1)[0].split("--device", 1)[0]
    for kind in (ONNX_SUFFIX, PROGRAM_SUFFIX, TORCHSCRIPT_SUFFIXES[0], "_net_G_A.pth", "G.safetensors"):
        assert kind in checkpoint_help, kind
