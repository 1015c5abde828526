"""Training parity with the authors' public code, on the CPU in float32 and float64, step by step.

    python benchmarks/parity_vs_public.py --public DIR                       # every SRUNIT-repository case
    python benchmarks/parity_vs_public.py --public DIR --cases cut-b1,cyclegan-pool4-b2
    python benchmarks/parity_vs_public.py --gcgan DIR2 --drit DIR3           # the GcGAN and DRIT cases
    python benchmarks/parity_vs_public.py --public DIR --write-traces tests/benchmarks/parity_traces

DIR is a checkout of github.com/SeanJia/SRUNIT, which holds the public CUT (``--reg 0``), SRUNIT and
CycleGAN models; DIR2 one of github.com/hufu6371/GcGAN (benchmarks/parity_gcgan.py), DIR3 one of
github.com/HsinYingLee/DRIT (benchmarks/parity_drit.py). Each is imported, never changed. Each case
trains one of our presets through the trainer's step (`StepRunner.train_step`) and the public model
through its own update methods and learning-rate schedulers, from the same initial weights, on the
same batches, with the same random draws (see benchmarks/parity_core.py for how), and prints for
every step the relative difference of every loss both log, then G's largest difference on a fixed
probe batch and the largest relative difference of every weight tensor (the conv biases that feed an
InstanceNorm, whose true gradient is 0, apart). ``--write-traces`` stores what the public code
produced, for the replay test that runs without it.

Where the public SRUNIT code cannot run as it is, the harness does the least that lets it, in memory,
and says so (GcGAN's and DRIT's: in their modules' docstrings): its CycleGAN model reads ``opt.amp``,
which no option defines (set to False), and calls its generators as if they returned an image, where
they return (image, feature) (the harness passes on the image); `data_dependent_initialize` is called
for the SRUNIT model only, as train.py calls it with a batch that the CycleGAN model's signature does
not take; ``parallelize`` (DataParallel, a no-op on the CPU) is left out.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import re
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import parity_core as pc  # noqa: E402
import parity_drit  # noqa: E402
import parity_gcgan  # noqa: E402
import parity_stegogan as stego  # noqa: E402
from parity_public import PoolDraws, PublicCode, PublicWeights, quiet, stub_torchvision  # noqa: E402

# Our network name -> the public model's attribute, per public model.
PUBLIC_NETWORKS = {
    "srunit": {"G": "netG", "D": "netD", "F": "netF"},
    "cycle_gan": {"G": "netG_A", "G_BA": "netG_B", "D_B": "netD_A", "D_A": "netD_B"},
}


def public_key(name: str) -> str:
    """Our state-dict key -> the public code's: ``layers.N`` -> ``model.N``, ``mlps.K.`` -> ``mlp_K.``."""
    return re.sub(r"^mlps\.(\d+)\.", r"mlp_\1.", re.sub(r"^layers\.", "model.", name))


def import_public(code: Path) -> types.SimpleNamespace:
    """The public code's modules (`PublicCode`: its packages ``models``, ``options``, ``util`` and
    ``data`` are GcGAN's names too). Only its image pipeline imports torchvision, which the harness
    does not use (`stub_torchvision`)."""
    if not (code / "models" / "srunit_model.py").is_file():
        raise SystemExit(f"error: {code} is not a checkout of the public SRUNIT code (no models/srunit_model.py)")
    stub_torchvision()
    repo = PublicCode(code, ("models", "options", "util", "data"))
    with repo.active():
        import models
        import models.networks
        import util.image_pool
        from options.train_options import TrainOptions

    return types.SimpleNamespace(repo=repo, models=models, networks=models.networks, image_pool=util.image_pool,
                                 TrainOptions=TrainOptions)


class NumpyDraws:
    """Stands in for the `np` of a public module: ``np.random`` draws from the harness, the rest is NumPy."""

    def __init__(self, draws: pc.Draws) -> None:
        import numpy

        self._numpy = numpy
        self._draws = draws
        self.random = types.SimpleNamespace(permutation=self._permutation, choice=self._choice)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._numpy, name)

    def _permutation(self, n: int) -> Any:
        return self._draws.permutation(int(n))

    def _choice(self, a: Any, size: int = 1) -> Any:
        assert size == 1, size
        options = list(a)
        return self._numpy.array([options[self._draws.layer(len(options))]])


class FirstOutput(nn.Module):
    """The public generator called as an image-to-image function: its standard forward returns
    (image, feature); the public CycleGAN model uses the result as an image."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0]


class _ContiguousGradient(torch.autograd.Function):
    """Identity whose backward passes on a contiguous gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clone()  # a copy: the next layer may be an in-place ReLU

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()


def contiguous_instance_norm_gradients(net: nn.Module) -> int:
    """Work around a torch CPU bug for the public networks: instance_norm's backward is wrong for a
    batch of one image when the incoming gradient has channels-last strides (torch 2.13, float32 and
    float64), and the public PatchSampleF's permute-and-index gives G's feature layers exactly such
    gradients. A forward hook on every InstanceNorm2d makes the gradient that reaches it contiguous:
    the same values, so the public method's own arithmetic is unchanged. Returns how many it hooked."""
    count = 0
    for module in net.modules():
        if isinstance(module, nn.InstanceNorm2d):
            module.register_forward_hook(lambda _m, _i, out: _ContiguousGradient.apply(out))
            count += 1
    return count


class PublicRun(PublicWeights):
    """The public model of a case, with every draw routed through the harness."""

    def __init__(self, public: types.SimpleNamespace, case: pc.Case, draws: pc.Draws, workdir: Path,
                 torch_workaround: bool = True, side: str = "public") -> None:
        self.public, self.case, self.draws, self.side = public, case, draws, side
        with public.repo.active():
            self._build(public, case, draws, workdir, torch_workaround)

    def _build(self, public: types.SimpleNamespace, case: pc.Case, draws: pc.Draws, workdir: Path,
               torch_workaround: bool) -> None:
        argv = case.public_options + ["--dataroot", str(workdir), "--checkpoints_dir", str(workdir),
                                      "--name", "parity"]
        options = public.TrainOptions()
        options.cmd_line = argv
        opt = options.gather_options()
        opt.isTrain, opt.gpu_ids = True, []
        if case.public_model == "cycle_gan":
            opt.amp = False  # read by its backward passes; no option defines it
        self.opt = opt
        self.pool_random = PoolDraws(draws)
        with quiet():
            self.model = public.models.create_model(opt)
        if torch_workaround:
            for name in PUBLIC_NETWORKS[case.public_model].values():
                contiguous_instance_norm_gradients(getattr(self.model, name))
        if case.public_model == "cycle_gan":
            self.model.netG_A, self.model.netG_B = FirstOutput(self.model.netG_A), FirstOutput(self.model.netG_B)
            for name, pool in (("B", self.model.fake_B_pool), ("A", self.model.fake_A_pool)):
                pool.query = self._pool_query(name, pool)
        else:
            # train.py: the first batch builds F's MLPs (a forward and backward pass, no step).
            draws.begin(-1, self.side)
            with self.patched(), quiet():
                self.model.data_dependent_initialize(self._input(pc.batch(case, 0)))
        with quiet():
            self.model.setup(opt)  # the learning-rate schedulers
        # float64: the networks and the loss modules' constant buffers (GANLoss's labels).
        for name in (*PUBLIC_NETWORKS[case.public_model].values(), "criterionGAN"):
            getattr(self.model, name).to(case.torch_dtype)
        for criterion in getattr(self.model, "criterionNCE", []):
            criterion.to(case.torch_dtype)

    def _pool_query(self, name: str, pool: Any) -> Any:
        query = pool.query

        def wrapped(images: torch.Tensor) -> torch.Tensor:
            self.pool_random.current, self.pool_random.size = name, pool.pool_size
            return query(images)
        return wrapped

    def _input(self, data: dict[str, torch.Tensor]) -> dict[str, Any]:
        n = data["A"].shape[0]
        return {**data, "A_paths": [f"A{i}" for i in range(n)], "B_paths": [f"B{i}" for i in range(n)]}

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        p = self.public
        numpy_draws = NumpyDraws(self.draws)
        targets = [(p.networks, "np", numpy_draws), (p.networks, "torch", pc.TorchDraws(self.draws)),
                   (p.image_pool, "random", self.pool_random)]
        srunit_model = sys.modules.get("models.srunit_model", p.repo.modules.get("models.srunit_model"))
        if srunit_model is not None:
            targets.append((srunit_model, "np", numpy_draws))
        saved = [(m, name, getattr(m, name)) for m, name, _ in targets]
        for m, name, value in targets:
            setattr(m, name, value)
        try:
            yield
        finally:
            for m, name, value in saved:
                setattr(m, name, value)

    def network(self, ours: str) -> nn.Module:
        net = getattr(self.model, PUBLIC_NETWORKS[self.case.public_model][ours])
        return net.net if isinstance(net, FirstOutput) else net

    def key_map(self, name: str, net: nn.Module) -> dict[str, str]:
        return {k: public_key(k) for k in net.state_dict()}

    def check_loaded(self, name: str, state: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
        for key, value in state.items():
            if key.endswith(".filt") and not torch.equal(theirs[key], value):
                raise SystemExit(f"the public {name} blur filter {key} differs from ours")

    def step(self, step: int, data: dict[str, torch.Tensor]) -> dict[str, float]:
        self.draws.begin(step, self.side)
        m = self.model
        m.set_input(self._input(data))
        with self.patched():
            if self.case.public_model == "srunit":
                m.optimize_parameters(step + 1)  # one step per epoch; the epoch is 1-based
            else:
                m.optimize_parameters()
        with quiet():
            m.update_learning_rate()  # at the end of every (one-step) epoch
        return self.losses(step)

    def losses(self, step: int) -> dict[str, float]:
        """The losses of the last step under our names."""
        m = self.model
        if self.case.public_model == "cycle_gan":
            names = {"G_GAN_B": "G_A", "G_GAN_A": "G_B", "cycle_A": "cycle_A", "cycle_B": "cycle_B",
                     "idt_B": "idt_A", "idt_A": "idt_B", "G": "G", "D_B": "D_A", "D_A": "D_B"}
            out = {ours: float(getattr(m, f"loss_{theirs}")) for ours, theirs in names.items()}
            out["D"] = out["D_B"] + out["D_A"]
            return out
        out = {"D": float(m.loss_D), "G_GAN": float(m.loss_G_GAN), "NCE": float(m.loss_NCE)}
        if self.opt.nce_idt:
            out["NCE_Y"] = float(m.loss_NCE_Y)
        active = m.reg > 0 and step + 1 > self.opt.inact_epochs
        out["G"] = float(m.loss_G) + (m.reg * float(m.loss_reg) if active else 0.0)
        if active:
            out["robust"] = float(m.loss_reg)
        return out

    @torch.no_grad()
    def probe(self, images: torch.Tensor) -> torch.Tensor:
        return self.network("G")(images)[0].detach().clone()


# Per public repository: how to import it (from the checkout the user names) and its runner, whose
# instances have load(ours, nudge), step(step, data) -> losses under our names, probe(images) and
# state(ours) -> the public weights under our names.
REPOSITORIES: dict[str, tuple[str, Any, Any]] = {
    "srunit": ("--public", import_public, PublicRun),
    "gcgan": ("--gcgan", parity_gcgan.import_public, parity_gcgan.PublicRun),
    "drit": ("--drit", parity_drit.import_public, parity_drit.PublicRun),
    # Last: its checkout's packages stay in sys.modules (parity_stegogan.import_public), where the others are
    # swapped in only while their code runs (parity_public.PublicCode).
    "stegogan": ("--stegogan", stego.import_public,
                 functools.partial(stego.PublicRun, instance_norm_hook=contiguous_instance_norm_gradients)),
}
CASES = {**pc.CASES, **parity_gcgan.CASES, **parity_drit.CASES, **stego.CASES}
SMALL_CASES = {**pc.SMALL_CASES, **parity_gcgan.SMALL_CASES, **parity_drit.SMALL_CASES, **stego.SMALL_CASES}
ALL_CASES = {**CASES, **SMALL_CASES}


def run_case(public: types.SimpleNamespace, case: pc.Case, workdir: Path, verbose: bool = True,
             control: bool = True) -> tuple[pc.Outcome, pc.Draws, torch.Tensor]:
    """Train ours and the public model side by side; with ``control``, also a second public model whose
    initial weights are one unit in the last place higher, with the same batches and draws: how far
    the public code moves from itself under a rounding-sized change, the floor for any comparison."""
    run = REPOSITORIES[case.public_repo][2]
    draws = pc.Draws(case.seed)
    runner = pc.build_ours(case)
    nets = runner.method.networks()
    theirs = run(public, case, draws, workdir)
    theirs.load(nets)
    nudged = None
    if control:
        nudged = run(public, case, draws, workdir, side="control")
        nudged.load(nets, nudge=True)
    records, controls = [], []
    problem = None
    if verbose:
        options = stego.public_argv(case) if stego.is_stegogan(case) else [case.public_model, *case.public_args]
        print(f"\n## {case.label}: our preset {case.preset} {' '.join(case.overrides)} | public "
              f"{case.public_repo} {' '.join(options)}", flush=True)
    for step in range(case.steps):
        data = pc.batch(case, step)
        public_losses = theirs.step(step, data)
        our_losses = pc.our_step(runner, draws, step, data)
        records.append(pc.StepRecord(step, our_losses, public_losses))
        problem = problem or pc.check_draws(draws.asked("ours", step), draws.asked("public", step))
        line = f"step {step + 1:2d}  largest {records[-1].largest:.2e}"
        if nudged is not None:
            controls.append(pc.StepRecord(step, nudged.step(step, data), public_losses))
            line += f" (control {controls[-1].largest:.2e})"
        if verbose:
            diffs = "  ".join(f"{k} {v:.1e}" for k, v in records[-1].differences.items())
            print(f"{line}  |  {diffs}", flush=True)
    if verbose:
        print("weights after the last step, largest |ours - public| / largest |w| per tensor ([IN]: a conv bias "
              "that feeds an InstanceNorm, true gradient 0):")
    probe = pc.probe_batch(case)
    public_probe = theirs.probe(probe)
    ours_probe = pc.our_probe(runner, probe, case)
    public_state = theirs.state(nets)
    rest, biases = 0.0, 0.0
    for name, net in nets.items():
        in_biases = pc.instance_norm_biases(net, features_read="F" in nets)
        mine = {k: v.detach() for k, v in net.named_parameters()}
        r, b = pc.weight_differences(mine, public_state[name], in_biases)
        rest, biases = max(rest, r), max(biases, b)
        if verbose:
            each = pc.tensor_differences(mine, public_state[name])
            print(f"{name}: " + "  ".join(f"{k}{' [IN]' if k in in_biases else ''} {v:.1e}" for k, v in each.items()))
    outcome = pc.Outcome(case, records, float((ours_probe - public_probe).abs().max()), rest, biases, problem)
    if nudged is not None:
        outcome.control = controls
        outcome.control_probe_difference = float((nudged.probe(probe) - public_probe).abs().max())
    return outcome, draws, public_probe


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for repo, (flag, _, _) in REPOSITORIES.items():
        p.add_argument(flag, dest=repo, type=Path, metavar="DIR", help=f"checkout of {REPOSITORY_NAMES[repo]}")
    p.add_argument("--cases", default=None,
                   help=f"comma-separated, of {', '.join(CASES)} (default: every case of the repositories given), "
                        "or their small forms NAME-s32 / NAME-w8 (DRIT) (what the committed traces hold), or `small` "
                        "for all of those")
    p.add_argument("--steps", type=int, help="steps per case (default 20, the last 10 with a decaying learning rate)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--write-traces", type=Path, help="folder for one trace per case (the replay test's input)")
    p.add_argument("--dtypes", default="float32,float64", help="float32 (how both codes train), float64 "
                   "(exact-arithmetic reference), or both (default)")
    p.add_argument("--no-control", action="store_true", help="leave out the control run (the public code "
                   "against itself, nudged by one unit in the last place)")
    p.add_argument("--quiet", action="store_true", help="only the summary table")
    args = p.parse_args()
    for option, value in (("--steps", args.steps), ("--threads", args.threads)):
        if value is not None and value < 1:  # 0 was taken as "the default", a negative count as given
            p.error(f"{option} {value}: give 1 or more, or leave {option} out for the default")
    if args.threads:
        torch.set_num_threads(args.threads)
    given = [repo for repo in REPOSITORIES if getattr(args, repo) is not None]
    if not given:
        p.error("name at least one public checkout: " + ", ".join(f"{flag} DIR ({REPOSITORY_NAMES[repo]})"
                                                                  for repo, (flag, _, _) in REPOSITORIES.items()))
    requested = args.cases or ",".join(n for n, c in CASES.items() if c.public_repo in given)
    names = [n for c in requested.split(",") if c
             for n in ([n for n, s in SMALL_CASES.items() if s.public_repo in given] if c == "small" else [c])]
    unknown = [c for c in names if c not in ALL_CASES]
    if unknown:
        p.error(f"--cases: unknown {', '.join(unknown)}; choose from {', '.join(CASES)}, their small forms, or small")
    missing = sorted({ALL_CASES[n].public_repo for n in names} - set(given))
    if missing:
        p.error("--cases: " + "; ".join(f"the {repo} cases need {REPOSITORIES[repo][0]} DIR" for repo in missing))
    dtypes = [d for d in args.dtypes.split(",") if d]
    if not dtypes or set(dtypes) - {"float32", "float64"}:
        p.error(f"--dtypes: {args.dtypes!r}; give float32, float64 or both")
    publics = {}
    for repo in given:
        try:
            publics[repo] = REPOSITORIES[repo][1](getattr(args, repo).resolve())
        except ImportError as error:  # a partial checkout, or one of another layout
            raise SystemExit(f"error: {REPOSITORIES[repo][0]} {getattr(args, repo)}: importing the public code failed "
                             f"({type(error).__name__}: {error}); give a whole checkout of {REPOSITORY_NAMES[repo]}"
                             ) from None
    rows = []
    failed = 0
    with tempfile.TemporaryDirectory() as workdir:
        for dtype in dtypes:
            for name in names:
                case = dataclasses.replace(ALL_CASES[name], dtype=dtype)
                if args.steps:
                    case = dataclasses.replace(case, steps=args.steps, decay_steps=args.steps // 2)
                start = time.perf_counter()
                with pc.default_dtype(case.torch_dtype):
                    outcome, draws, public_probe = run_case(publics[case.public_repo], case, Path(workdir),
                                                            verbose=not args.quiet, control=not args.no_control)
                seconds = time.perf_counter() - start
                failed += bool(outcome.failures())
                rows.append(summary_row(outcome, seconds))
                if args.write_traces:
                    pc.write_trace(args.write_traces / f"{name}-{dtype}.safetensors", outcome, draws, public_probe)
    print("\n| case | precision | steps | step 1: largest loss difference | largest loss difference, all steps "
          "(control) | G's probe output (control) | weights | conv biases before an InstanceNorm | verdict | time |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\ngoals: step 1 within {pc.STEP1_RTOL:g} relative, every loss within {pc.LOSS_RTOL:g} relative at every "
          f"step, G's probe output within {pc.PROBE_ATOL:g}. Control: the public code against itself with its "
          f"initial weights one unit in the last place higher. Weights: relative to each tensor's largest "
          f"magnitude. torch {torch.__version__}, {torch.get_num_threads()} threads")
    return 1 if failed else 0


REPOSITORY_NAMES = {"srunit": "github.com/SeanJia/SRUNIT", "gcgan": "github.com/hufu6371/GcGAN",
                    "drit": "github.com/HsinYingLee/DRIT", "stegogan": "github.com/sian-wusidi/StegoGAN"}


def summary_row(outcome: pc.Outcome, seconds: float) -> str:
    o = outcome
    control = o.control_loss_difference
    loss = f"{o.largest_loss_difference:.1e}" + (f" ({control:.1e})" if control is not None else "")
    probe = f"{o.probe_difference:.1e}" + (f" ({o.control_probe_difference:.1e})" if control is not None else "")
    return (f"| {o.case.name} | {o.case.dtype} | {len(o.steps)} | {o.step1_difference:.1e} | {loss} | {probe} | "
            f"{o.weight_difference:.1e} | {o.in_bias_difference:.1e} | {o.verdict()} | {seconds:.0f} s |")


if __name__ == "__main__":
    sys.exit(main())
