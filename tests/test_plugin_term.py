"""A loss term and an extended method plug in, each from one file: tests/plugins/total_variation.py and
tests/plugins/spectral_cut.py (docs/adding-a-method.md walks through both).

With ``SRUNIT_PLUGINS`` naming them, the term is a ``method.tv`` section of every method that takes added loss terms,
checked like srunit's own, listed in the options, added to the generator's loss with the value of its definition;
the subclass of CUT and its variant are methods of their own names. Nothing in srunit is edited. The plugins are
imported in fresh interpreters, so the registries of this test session stay srunit's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PLUGINS = Path(__file__).resolve().parent / "plugins"
ENV = {**os.environ, "SRUNIT_PLUGINS": "total_variation,spectral_cut",
       "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")])}
TINY = ["model.ngf=4", "model.ndf=4", "model.n_blocks=2", "model.projector_dim=8", "method.num_patches=16",
        "data.load_size=36", "data.crop_size=32", "train.device=cpu"]

CHECKS = f"""
import numpy as np
import pytest
import torch

from srunit.config import config_from_dict, load_config, method_option_rows, method_options
from srunit.errors import ConfigError
from srunit.methods import CUT, StepContext, build_method
from srunit.registry import METHODS, TERMS

TINY = {TINY!r}
assert TERMS.names() == ["distance", "lipschitz", "robust", "smooth", "tv"]

# The term is a section of SRUNIT's config (of any method that takes terms), after srunit's own.
config = load_config("srunit", [*TINY, "method.tv.weight=0.5", "method.tv.squared=true"])
assert list(config.method.terms) == ["robust", "tv"] and config.method.terms["tv"].squared
written = config.to_dict()["method"]
assert written["tv"] == {{"weight": 0.5, "start": 0.0, "squared": True}} and written["distance"] is None
assert config_from_dict(config.to_dict()) == config
assert "tv" not in load_config("srunit").to_dict()["method"]  # off: not written (a run loads without the plugin)

# Checked and described like srunit's own terms.
with pytest.raises(ConfigError, match=r"^method.tv.weight: invalid value -1.0; allowed: a number >= 0$"):
    load_config("cut", ["method.tv.weight=-1"])
with pytest.raises(ConfigError, match=r"unknown key method.tv.nope; allowed keys in method.tv: squared, start, weight"):
    load_config("cut", ["method.tv.nope=1"])
with pytest.raises(ConfigError, match=r"unknown key method.tv; allowed keys in method:"):
    load_config("cyclegan", ["method.tv.weight=1"])
rows = {{r.key: r for r in method_option_rows("cut")}}
assert rows["method.tv.weight"].default == 0.1 and rows["method.tv.weight"].section.startswith("method.tv: total var")

# The loss: weight * TV(G(x)), TV computed here with numpy from its definition.
torch.manual_seed(0)
method = build_method(config.method, config.model)
assert list(method.regularizers) == ["robust", "tv"]
g = torch.Generator().manual_seed(1)
batch = {{k: torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for k in "AB"}}
ctx = StepContext(0, 10, 0)  # robust is off before 1/4 of training, tv on from step 0
state = method.forward_step(batch, ctx)
loss, logs = method.generator_loss(state, ctx)
fake = state.fake_b.detach().numpy().astype(np.float64)
tv = np.mean(np.diff(fake, axis=2) ** 2) + np.mean(np.diff(fake, axis=3) ** 2)
assert abs(float(logs["tv"]) - tv) < 1e-5 * max(1.0, tv), (float(logs["tv"]), tv)
expected = logs["G_GAN"] + 0.5 * (logs["NCE"] + logs["NCE_Y"]) + 0.5 * logs["tv"]
assert torch.allclose(loss.detach(), expected, rtol=1e-5) and "robust" not in logs
loss.backward()
assert all(p.grad is not None for p in method.G.parameters())

# The extended method and its variant.
spectral = build_method(*(lambda c: (c.method, c.model))(load_config("cut", [*TINY, "method.name=cut-spectral"])))
assert type(spectral).__name__ == "SpectralCUT" and isinstance(spectral, CUT)
convs = [m for m in spectral.D.modules() if isinstance(m, torch.nn.Conv2d)]
assert convs and all(hasattr(m, "parametrizations") for m in convs)
assert not any(hasattr(m, "parametrizations") for m in spectral.G.modules())
variant = method_options({{"name": "fastcut-spectral"}})
assert (variant.name, variant.lambda_nce, variant.nce_idt, variant.spectral_norm) == ("fastcut-spectral", 10.0,
                                                                                        False, True)
assert METHODS.get("fastcut-spectral") is type(spectral) and "fastcut-spectral" in METHODS.names()
print("OK")
"""


@pytest.mark.e2e  # srunit in a subprocess
def test_a_plugin_term_and_an_extended_method_work_from_their_files() -> None:
    done = subprocess.run([sys.executable, "-c", CHECKS], env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), done.stdout[-2000:] + done.stderr[-4000:]


def _srunit(*args: str, env: dict[str, str] = ENV) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "srunit", *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"srunit {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.e2e
def test_the_commands_train_resume_and_translate_with_them(tiny_data: Path, tmp_path: Path) -> None:
    """`srunit train` trains the extended method with the plugin term and resumes it; the run's generator
    translates where the plugins are not installed (a CUT generator file needs neither)."""
    overrides = [f"--{o}" for o in TINY]  # --section.key=value
    _srunit("train", "--preset", "cut", "--method.name", "cut-spectral", "--method.tv.weight", "0.5",
            "--data.root", str(tiny_data), "--data.num_workers", "0", "--train.steps", "2", "--train.name", "spec",
            "--train.runs_dir", str(tmp_path / "runs"), "--train.loggers", "", "--no-progress", *overrides)
    run = tmp_path / "runs" / "spec"
    _srunit("train", "--resume", str(run), "--train.steps", "3", "--no-progress")
    method = yaml.safe_load((run / "config.yaml").read_text())["method"]
    assert method["name"] == "cut-spectral" and method["tv"]["weight"] == 0.5 and method["robust"] is None
    logged = [yaml.safe_load(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in logged][-1] == 3 and all("tv" in m for m in logged)
    bare = {k: v for k, v in os.environ.items() if k != "SRUNIT_PLUGINS"}
    _srunit("translate", "--checkpoint", str(run), "--input", str(tiny_data / "testA"), "--output",
            str(tmp_path / "out"), "--device", "cpu", env=bare)
    assert len(list((tmp_path / "out").glob("*.png"))) == len(list((tiny_data / "testA").iterdir()))
