"""How much of the generator's gradient comes from SRUNIT's robustness term (Eq. 3) at a checkpoint.

    .venv/bin/python benchmarks/robust_gradient_share.py RUN [RUN ...] [--batches 16] [--beta 1e-4] [--set K=V]

For each run (a CUT or SRUNIT run: the two share G, F and D) the checkpoint's networks are loaded
into an SRUNIT method with the run's model and data settings and the SRUNIT preset's robustness
options, and on ``--batches`` training batches the gradient with respect to G's parameters is
taken separately of each term of the G phase: the GAN term, the PatchNCE term (the identity average
included) and beta * L_robust. The table gives each term's gradient norm (mean over batches), the
norm of beta * L_robust's gradient relative to the sum of the others, and the cosine between the
two. Nothing is trained or written.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import yaml

from srunit.config import load_config
from srunit.data import UnalignedDataset
from srunit.errors import SrunitError
from srunit.losses.adversarial import generator_loss
from srunit.methods import build_method
from srunit.methods.base import StepContext
from srunit.runtime.network_files import load_network_weights
from srunit.runtime.run_folder import RunFolder, checkpoint_step, network_file


def _flat_grad(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for g, p in zip(grads, params)])


def measure(run: Path, batches: int, beta: float | None, seed: int, extra: list[str]) -> dict[str, float]:
    saved = yaml.safe_load(RunFolder(run).config.read_text())
    keep = {k: saved[k] for k in ("model", "data")}
    overrides = [f"{section}.{key}={value}" for section, values in keep.items() for key, value in values.items()
                 if value is not None and not isinstance(value, (list, dict))]
    overrides += [f"model.feature_layers={','.join(map(str, saved['model']['feature_layers']))}"]
    overrides.append(f"method.num_patches={saved['method']['num_patches']}")
    if beta is not None:
        overrides.append(f"method.robust.weight={beta}")
    config = load_config("srunit", [*overrides, *extra])
    torch.manual_seed(seed)
    method = build_method(config.method, config.model)
    ckpt = RunFolder(run).latest_checkpoint()
    for name in ("G", "F", "D"):
        load_network_weights(getattr(method, name), network_file(ckpt, name))
    method.train()
    dataset = UnalignedDataset.from_config(config.data, seed=seed)
    if batches > len(dataset):
        raise SrunitError(f"--batches {batches} is more than the {len(dataset)} batches of one image its data holds; "
                          f"pass --batches {len(dataset)} or fewer")
    params = [p for p in method.G.parameters() if p.requires_grad]
    ctx = StepContext(step=10**9, total_steps=10**9, seed=seed)  # past the switch-on: the loss is active
    o = config.method
    sums = {"gan": 0.0, "nce": 0.0, "robust": 0.0, "ratio": 0.0, "cosine": 0.0, "robust_loss": 0.0}
    for i in range(batches):
        item = dataset[i]
        batch = {k: item[k][None] for k in ("A", "B")}
        state = method.forward_step(batch, ctx)
        gan = generator_loss(o.gan_mode, method.D(state.fake_b)) * o.lambda_gan
        queries = method.G.encode(torch.cat([state.fake_b, state.idt_b]))
        nce = 0.5 * (method.nce_loss([f[:1] for f in state.feats], [q[:1] for q in queries], state.real_a, None)
                     + method.nce_loss([f[1:] for f in state.feats], [q[1:] for q in queries], state.real_b, None))
        state.feats_fake = [q[:1] for q in queries]
        robust = method.regularization(state, ctx, {})
        g_gan, g_nce, g_rob = (_flat_grad(t, params) for t in (gan, nce, robust))
        rest = g_gan + g_nce
        sums["gan"] += float(g_gan.norm())
        sums["nce"] += float(g_nce.norm())
        sums["robust"] += float(g_rob.norm())
        sums["ratio"] += float(g_rob.norm() / rest.norm())
        sums["cosine"] += float(torch.nn.functional.cosine_similarity(g_rob, rest, dim=0))
        sums["robust_loss"] += float(robust.detach()) / config.method.terms["robust"].weight
    out = {k: v / batches for k, v in sums.items()}
    out["beta"] = config.method.terms["robust"].weight
    step = checkpoint_step(ckpt.name)
    out["step"] = math.nan if step is None else step
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--beta", type=float, default=None, help="beta (default: the srunit preset's, 1e-4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an SRUNIT option for the measurement, e.g. method.robust.estimator=control_variate")
    args = parser.parse_args()
    if args.batches < 1:
        parser.error(f"--batches {args.batches}: give 1 or more (each is one training image of each domain)")
    for run in args.runs:  # before the first row, so that a typo costs no measurement
        if not (run / "config.yaml").is_file():
            parser.error(f"{run}: not a run folder (no config.yaml); give a CUT or SRUNIT run, runs/NAME")
        if not RunFolder(run).has_checkpoint():
            parser.error(f"{run}: holds no checkpoint; train it first (srunit train --resume {run})")
    print("| run | step | beta | L_robust | grad GAN | grad NCE | grad beta*L_robust | ratio to GAN+NCE | cosine |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        try:
            m = measure(run, args.batches, args.beta, args.seed, args.set)
        except SrunitError as error:  # its data folder moved, a --set srunit refuses, ...
            parser.exit(1, f"robust_gradient_share.py: error: {run}: {error}\n")
        print(f"| {run.name} | {m['step']} | {m['beta']:g} | {m['robust_loss']:.3g} | {m['gan']:.3g} | {m['nce']:.3g} "
              f"| {m['robust']:.3g} | {m['ratio']:.2e} | {m['cosine']:+.3f} |")


if __name__ == "__main__":
    main()
