"""A command imports only what it runs: `srunit translate`, `export` and `app` on a deploy machine load the translator
and the runtime, never the trainer, a method, a loss or the benchmark; `srunit --help` still lists every method.

Each command runs for real in a fresh interpreter (on a tiny trained run) and reports the srunit modules loaded when
it is done; the static imports of their modules are checked in tests/test_package.py's layering contracts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from srunit.registry import METHODS

# What a deploy machine never needs: the training engine, the methods and their losses, the benchmark.
TRAINING = ("srunit.engine", "srunit.methods", "srunit.losses", "srunit.synthscapes")

# Runs `srunit ARGS...` through cli.main, then prints the srunit modules loaded. The app is served up to the point
# where it would listen (the page is built): launching it imports nothing more of srunit.
RUNNER = """
import sys

if sys.argv[1] == "app":
    import srunit.app

    def launch_app(blocks, demo, host, port):
        raise SystemExit(0)

    srunit.app.launch_app = launch_app
from srunit.cli.main import main

try:
    code = main(sys.argv[1:])
except SystemExit as done:
    code = done.code
print("MODULES", *sorted(m for m in sys.modules if m.startswith("srunit")))
sys.exit(code)
"""


def _loaded(outputs: list[str]) -> list[str]:
    lines = [line for line in outputs if line.startswith("MODULES ")]
    assert lines, outputs
    return lines[-1].split()[1:]


def test_translate_export_and_app_import_no_training_code(tiny_runs: dict[str, Path], tiny_data: Path,
                                                          tmp_path: Path) -> None:
    run = str(tiny_runs["cut"])
    commands = {
        "translate": ["translate", "--checkpoint", run, "--input", str(tiny_data / "testA"), "--output",
                      str(tmp_path / "out"), "--device", "cpu"],
        "export": ["export", run, "--output", str(tmp_path / "g.ts"), "--check-size", "32x32"],
        "app": ["app", "--checkpoint", run, "--device", "cpu", "--examples", "0"],
    }
    if not _has_gradio():
        del commands["app"]  # without the app extra the command stops before loading a checkpoint
    # The commands run side by side: each is a fresh interpreter importing torch.
    started = {name: subprocess.Popen([sys.executable, "-c", RUNNER, *argv], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for name, argv in commands.items()}
    for name, proc in started.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"srunit {name} failed:\n{out[-2000:]}\n{err[-3000:]}"
        loaded = _loaded(out.splitlines())
        assert f"srunit.cli.{name}" in loaded, loaded  # it did run the command
        training = [m for m in loaded if any(m == p or m.startswith(p + ".") for p in TRAINING)]
        assert not training, f"srunit {name} imported training code: {training}"
        others = [m for m in loaded if m.startswith("srunit.cli.") and m not in ("srunit.cli.main",
                                                                                 "srunit.cli.commands",
                                                                                 f"srunit.cli.{name}")]
        assert not others, f"srunit {name} imported the modules of other commands: {others}"
    assert (tmp_path / "g.ts").is_file() and any((tmp_path / "out").iterdir())


def _has_gradio() -> bool:
    import importlib.util

    return importlib.util.find_spec("gradio") is not None


def test_top_level_help_lists_every_method_and_command() -> None:
    done = subprocess.run([sys.executable, "-m", "srunit", "--help"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    for name in METHODS.names():
        assert f" {name}," in out or f" {name}." in out, name
    from srunit.cli.commands import COMMANDS

    for name, command in COMMANDS.items():
        assert f"{name} {command.summary}" in out, name
