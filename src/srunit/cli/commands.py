"""The subcommands of `srunit`: the module of each, imported only when it runs, and the line `srunit --help` lists.

A command imports only what it runs: `srunit translate` on a deploy machine loads the translator and the
runtime, never the trainer, a method class or a loss. `srunit.cli.main` builds the parser of the command
given (importing its module) and lists the others by their summary; a new subcommand is a module with
``add_parser(sub)`` and ``run(args, extra)`` plus a line here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHECKPOINT_KINDS", "COMMANDS", "Command"]

# What translate and app take as a checkpoint (srunit.runtime.run_folder.CheckpointSource): one text for both.
CHECKPOINT_KINDS = (
    "a run folder (runs/NAME), a checkpoint folder (.../step_N), a G.safetensors file (of a DRIT run: with E_c and "
    "E_a beside it), a *_net_G.pth / *_net_G_A.pth / *_net_G_B.pth file saved by the public CUT/SRUNIT/CycleGAN "
    "code, or a file of srunit export (.onnx, run by onnxruntime: pip install 'srunit[onnx]'; a torch.export "
    "program .pt2; TorchScript .ts)"
)


@dataclass(frozen=True)
class Command:
    module: str  # defines add_parser(sub) and run(args, extra) [and ACCEPTS_OVERRIDES]
    summary: str  # the one line of `srunit --help`, and the subcommand's help


COMMANDS: dict[str, Command] = {
    "train": Command("srunit.cli.train",
                     "train a translation method (SRUNIT, CUT, CycleGAN, DRIT, ...) on unpaired folders"),
    "translate": Command("srunit.cli.translate", "translate images with a trained generator"),
    "export": Command("srunit.cli.export", "export a trained generator to ONNX, a torch.export program or TorchScript"),
    "demo": Command("srunit.cli.demo",
                    "generate SynthScapes, train CUT and SRUNIT briefly, evaluate, write the HTML report"),
    "bench": Command("srunit.cli.bench",
                     "benchmarks: training speed (speed), the data loader (loader) and semantic flipping on "
                     "SynthScapes (synthscapes)"),
    "eval": Command("srunit.cli.eval", "score translated images (segmentation scores, paired pixel scores, FID/KID)"),
    "data": Command("srunit.cli.data", "prepare datasets, build unmatched-statistics splits (paper App. C, D) and "
                    "mismatch splits (StegoGAN)"),
    "tune": Command("srunit.cli.tune", "tune a method's hyper-parameters with Optuna (SynthScapes or your own data)"),
    "report": Command("srunit.cli.report", "write a self-contained HTML report of runs and benchmarks"),
    "app": Command("srunit.cli.app", "a web page: drop an image, see its translation by each checkpoint side by side"),
}
