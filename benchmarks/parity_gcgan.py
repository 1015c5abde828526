"""GcGAN beside its public code (github.com/hufu6371/GcGAN) in the parity harness (parity_vs_public.py).

Our `gcgan` preset against the public ``gc_gan_share`` model (one generator for x and f(x)), and,
with ``method.share_generator=false``, against ``gc_gan_cross``; the transformation f is the
90-degree rotation (``--geometry rot``) or the vertical flip (``vf``). Each step the harness calls the
public model's ``set_input`` and ``optimize_parameters`` (G, then both discriminators) and, at the
end of its one-step epoch, ``update_learning_rate``; the only random draws are the image pools'.

Where the public code cannot run as it is, the harness does the least that lets it, in memory:

- it moves its index tensors to the GPU (``torch.arange(...).long().cuda()`` in ``rot90`` and the
  flip): the model module's ``torch`` is a `parity_public.CpuTorch` while it runs, whose ``arange``
  makes tensors that stay on the CPU;
- its option parser reads ``sys.argv`` and writes ``opt.txt``: the harness parses its own list of
  options with the public parser and leaves the file out.

One option is chosen to match our schedule rather than the public default: ``--epoch_count 0``. The
public learning rate factor is 1 - max(0, epoch + 1 + epoch_count - niter) / (niter_decay + 1) (the
early CycleGAN formula), which with the default epoch_count 1 starts decaying one epoch before
``niter`` epochs are done and trains its last epoch at a learning rate of 0; ours (and the later
CycleGAN and CUT codes) keep ``niter`` epochs constant and end at 1 / (niter_decay + 1).
``--epoch_count 0`` is exactly that schedule (docs/parity.md).
"""

from __future__ import annotations

import re
import types
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

import parity_core as pc
from parity_public import CpuTorch, PoolDraws, PublicCode, PublicWeights, quiet, replaced

# Its initialisation calls torch's deprecated names (init.xavier_normal, ...); the harness loads our
# weights over it anyway.
warnings.filterwarnings("ignore", message=r"`nn\.init\.\w+` is now deprecated", category=FutureWarning)

# Our network name -> the public model's attribute.
NETWORKS = {"G": "netG_AB", "G_gc": "netG_gc_AB", "D": "netD_B", "D_gc": "netD_gc_B"}
# Our pool name -> the public model's pool.
POOLS = {"B": "fake_B_pool", "gc_B": "fake_gc_B_pool"}


def _cases() -> dict[str, pc.Case]:
    base = [
        # The public default model: one generator for x and f(x), f the 90-degree rotation; a pool of 4
        # fills within the run, so that its decisions are drawn and compared.
        pc.Case("gcgan", "gcgan", "gc_gan_share", ("--geometry", "rot"), pool_size=4, public_repo="gcgan"),
        pc.Case("gcgan-vf", "gcgan", "gc_gan_share", ("--geometry", "vf"), overrides=("method.geometry=vf",),
                pool_size=4, public_repo="gcgan"),
        # Two generators (the public gc_gan_cross model).
        pc.Case("gcgan-cross", "gcgan", "gc_gan_cross", ("--geometry", "rot"),
                overrides=("method.share_generator=false",), pool_size=4, public_repo="gcgan"),
    ]
    cases = {}
    for case in base:
        for batch in (1, 2):
            named = replace(case, name=f"{case.name}-b{batch}", batch_size=batch)
            cases[named.name] = named
    return cases


CASES = _cases()
SMALL_CASES = {c.name: c for c in map(pc.small_case, CASES.values())}


def public_key(name: str) -> str:
    """Our state-dict key -> the public code's: ``layers.N`` -> ``model.N``."""
    return re.sub(r"^layers\.", "model.", name)


def options(case: pc.Case, workdir: Path) -> list[str]:
    """The public command line of ``case`` (its option parser reads it)."""
    constant = case.steps - case.decay_steps
    assert case.pool_size is not None
    return ["--dataroot", str(workdir), "--checkpoints_dir", str(workdir), "--name", "parity",
            "--model", case.public_model, "--gpu_ids", "-1", "--ngf", str(case.ngf), "--ndf", str(case.ndf),
            "--which_model_netG", f"resnet_{case.n_blocks}blocks", "--no_dropout", "--batchSize", str(case.batch_size),
            "--loadSize", str(case.size), "--fineSize", str(case.size), "--niter", str(constant),
            "--niter_decay", str(case.decay_steps), "--epoch_count", "0", "--pool_size", str(case.pool_size),
            *case.public_args]


def import_public(code: Path) -> types.SimpleNamespace:
    """The public GcGAN code's modules (`PublicCode`: its packages ``models``, ``options`` and ``util``
    are SRUNIT's names too)."""
    if not (code / "models" / "gc_gan_share_model.py").is_file():
        raise SystemExit(f"error: {code} is not a checkout of the public GcGAN code (no models/gc_gan_share_model.py)")
    repo = PublicCode(code, ("models", "options", "util", "data"))
    with repo.active():
        import models.gc_gan_cross_model
        import models.gc_gan_share_model
        import models.models
        import util.image_pool
        from options.train_options import TrainOptions

    return types.SimpleNamespace(repo=repo, create_model=models.models.create_model, image_pool=util.image_pool,
                                 model_modules=(models.gc_gan_share_model, models.gc_gan_cross_model),
                                 TrainOptions=TrainOptions)


class PublicRun(PublicWeights):
    """The public GcGAN model of a case, with its image pools' decisions routed through the harness."""

    def __init__(self, public: types.SimpleNamespace, case: pc.Case, draws: pc.Draws, workdir: Path,
                 side: str = "public") -> None:
        self.public, self.case, self.draws, self.side = public, case, draws, side
        parser = public.TrainOptions()
        parser.initialize()
        opt = parser.parser.parse_args(options(case, workdir))
        opt.isTrain, opt.gpu_ids = True, []
        self.opt = opt
        self.pool_random = PoolDraws(draws)
        with public.repo.active(), quiet():
            self.model = public.create_model(opt)
        for name, attribute in POOLS.items():
            pool = getattr(self.model, attribute)
            pool.query = self._pool_query(name, pool)

    def _pool_query(self, name: str, pool: object) -> object:
        query = pool.query  # type: ignore[attr-defined]

        def wrapped(images: torch.Tensor) -> torch.Tensor:
            self.pool_random.current, self.pool_random.size = name, pool.pool_size  # type: ignore[attr-defined]
            return query(images)
        return wrapped

    def network(self, ours: str) -> nn.Module:
        return getattr(self.model, NETWORKS[ours])

    def key_map(self, name: str, net: nn.Module) -> dict[str, str]:
        return {k: public_key(k) for k in net.state_dict()}

    def step(self, step: int, data: dict[str, torch.Tensor]) -> dict[str, float]:
        self.draws.begin(step, self.side)
        m = self.model
        n = data["A"].shape[0]
        m.set_input({**data, "A_paths": [f"A{i}" for i in range(n)], "B_paths": [f"B{i}" for i in range(n)]})
        targets = [(module, "torch", CpuTorch()) for module in self.public.model_modules]
        with replaced([*targets, (self.public.image_pool, "random", self.pool_random)]):
            m.optimize_parameters()
        with quiet():
            m.update_learning_rate()  # at the end of every (one-step) epoch
        return self.losses()

    def losses(self) -> dict[str, float]:
        """The losses of the last step under our names (the public D_B is both discriminators' loss)."""
        m = self.model
        out = {"G_GAN": m.loss_G_AB, "G_GAN_gc": m.loss_G_gc_AB, "gc": m.loss_gc, "idt": m.loss_idt,
               "idt_gc": m.loss_idt_gc, "D": m.loss_D_B}
        out = {k: float(v) for k, v in out.items()}
        out["G"] = sum(out[k] for k in ("G_GAN", "G_GAN_gc", "gc", "idt", "idt_gc"))
        return out

    @torch.no_grad()
    def probe(self, images: torch.Tensor) -> torch.Tensor:
        return self.network("G")(images).detach().clone()


if __name__ == "__main__":  # a module of the harness, not a script: running it did nothing, silently
    raise SystemExit(f"{__file__} is a module of the parity harness; run benchmarks/parity_vs_public.py (--help)")
