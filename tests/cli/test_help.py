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


def _commands() -> list[list[str]]:
    """Every command and action of `srunit`, as argv words (["train"], ["data", "split"], ...)."""
    import argparse

    from srunit.cli.main import build_parser

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> list[list[str]]:
        found = [words] if words else []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    found += walk(child, [*words, name])
        return found

    return walk(build_parser(), [])


@pytest.mark.parametrize("words", _commands(), ids=" ".join)
def test_each_command_help_shows_its_own_description(words: list[str], capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Each command's parser was of the top parser's class, whose help replaced the description with the top's:
    # `srunit train --help` and `srunit data cityscapes --help` opened with "Unpaired image-to-image translation
    # that does not flip semantics. Methods ...", never their own text.
    from srunit.cli.main import build_parser

    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width
    parser = build_parser(words)
    for word in words:
        parser = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices[word]
    assert parser.description, f"srunit {' '.join(words)} has no description"
    with pytest.raises(SystemExit):
        main([*words, "--help"])
    out = capsys.readouterr().out
    assert "does not flip semantics" not in out
    assert " ".join(parser.description.split()[:6]) in " ".join(out.split())
    head = out[:out.find("\noptions:")]  # the usage and the description, wrapped for a terminal
    assert max(len(line) for line in head.splitlines()) <= 80, head


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
