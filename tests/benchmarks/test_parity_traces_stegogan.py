"""StegoGAN's training parity with its authors' public code, without it: our code replays the public code's traces.

Each stegogan-* trace in parity_traces/ was written by ``benchmarks/parity_vs_public.py --stegogan DIR
--write-traces`` from a run of the public StegoGAN repository (github sian-wusidi/StegoGAN) beside ours
(benchmarks/parity_stegogan.py): the case, the losses the public model logged at every step, the random draws it
asked for (its noise on G_BA(y), its pools' decisions) and its G's output on a fixed probe batch after the last
step. Only those numbers come from the public code. The test trains the stegogan-official preset on the same
initial weights, batches and draws and checks the parity goals, as test_parity_traces.py does for the others:

- float64 traces (32x32, width 8, 9 blocks), every step: step 1 within 1e-6 relative, every loss within 1e-4
  relative at every step, G's probe output within 1e-3 after the last step;
- float32 traces (64x64, width 16) of the README cases, the first step only: within 1e-6 relative (float32
  rounding).

The cases: the authors' README settings (hiding after the last of 9 blocks, fusion block, one mask per channel)
at batch 1 and 2, the public parser's default hiding point (5 blocks after it) with one mask for all channels and
no fusion block, and a pool of 4 that fills within the run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TRACES = Path(__file__).resolve().parent / "parity_traces"


def _core():
    spec = importlib.util.spec_from_file_location("parity_core", ROOT / "benchmarks" / "parity_core.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("parity_core", module)
    spec.loader.exec_module(module)
    return module


pc = _core()

CASES = [f"stegogan-official{variant}-b{batch}" for variant in ("", "-layer3", "-pool4") for batch in (1, 2)]
FLOAT64 = [f"{name}-s32" for name in CASES]
FLOAT32 = ["stegogan-official-b1", "stegogan-official-b2"]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: these small float64 networks gain nothing from a second."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def test_every_expected_trace_is_there() -> None:
    have = {p.stem for p in TRACES.glob("stegogan-*.safetensors")}
    expected = {f"{n}-float64" for n in FLOAT64} | {f"{n}-float32" for n in FLOAT32}
    assert have == expected, (f"write them with benchmarks/parity_vs_public.py --stegogan DIR --write-traces {TRACES}: "
                              f"missing {sorted(expected - have)}, unexpected {sorted(have - expected)}")


@pytest.mark.slow  # 20 steps of two 9-block generators per case in float64; step 1 of every case stays in the fast tier
@pytest.mark.parametrize("name", FLOAT64)
def test_our_training_replays_the_public_code_in_float64(name: str) -> None:
    outcome = pc.replay_trace(TRACES / f"{name}-float64.safetensors")
    assert outcome.case.dtype == "float64" and len(outcome.steps) == outcome.case.steps == 20
    assert not outcome.failures(), outcome.failures()
    # Not just within the goals: in float64 the two codes compute the same numbers.
    assert outcome.largest_loss_difference < 1e-7 and outcome.probe_difference < 1e-6
    # Every loss the public model adds to its total is compared.
    assert set(outcome.steps[0].public) == {"G_GAN_B", "G_GAN_A", "cycle_A", "cycle_B", "idt_B", "idt_A",
                                            "consistency_B", "mask_reg", "G", "D_B", "D_A", "D"}


@pytest.mark.parametrize("name", FLOAT32)
def test_our_first_float32_step_equals_the_public_codes(name: str) -> None:
    outcome = pc.replay_trace(TRACES / f"{name}-float32.safetensors", steps=1)
    assert outcome.case.dtype == "float32" and len(outcome.steps) == 1
    assert outcome.draw_problem is None
    assert outcome.step1_difference <= pc.STEP1_RTOL, outcome.steps[0].differences


def test_a_changed_mask_regulariser_is_caught() -> None:
    """The replay fails where our code computes something else: here the mask regulariser without its square root."""
    import srunit.methods.stegogan as stegogan

    original = stegogan.mask_regularisation
    stegogan.mask_regularisation = lambda mask: (mask.float() + stegogan.MASK_EPS).mean()
    try:
        outcome = pc.replay_trace(TRACES / "stegogan-official-b1-s32-float64.safetensors", steps=1)
    finally:
        stegogan.mask_regularisation = original
    assert outcome.steps[0].differences["mask_reg"] > 0.1 and outcome.failures()
