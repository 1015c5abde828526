"""Training parity with the public StegoGAN code (github sian-wusidi/StegoGAN): its cases and its side of a run.

`parity_vs_public.py --stegogan DIR` runs these cases beside its SRUNIT-repository ones; DIR is a checkout of
that repository, imported and never changed on disk. As for the other cases (parity_core.py), both sides start
from the same weights, train on the same batches and take every random draw from the harness: here the noise
on G_BA(y) before G reconstructs y (``normal``) and the image-pool decisions (``pool-A``, ``pool-B``).

The public model runs through its own ``optimize_parameters`` (with its double step of G's optimizer, which
the ``stegogan-official`` preset reproduces) and learning-rate schedulers (``--lr_policy linear``, as the other
cases, so that both codes decay alike over the last 10 of 20 one-step epochs). Where it cannot run as it is, the
harness does the least that lets it, in memory, and says so:

- it draws its noise on the CPU and moves it with ``.cuda()``, which needs a GPU: the harness's noise comes as a
  tensor whose ``.cuda()`` returns it unchanged, on the CPU;
- its mask network's input width is fixed at 256 channels (4 x its default --ngf 64), whatever --ngf is: the
  harness builds it for the generator's 4 ngf channels (the cases run at ngf 8 and 16);
- ``torchvision`` (its image pipeline, which the harness does not use) and ``matplotlib`` (imported by its
  data set and never used in training) are stood in for by empty modules where they cannot be imported.

Its generators have 9 residual blocks whatever is asked (define_G), so these cases do too. The SRUNIT
repository and this one both define the top-level packages ``models``, ``options``, ``util`` and ``data``:
`import_public` takes them out of ``sys.modules`` before it imports this checkout's, so run the SRUNIT cases
first (parity_vs_public.py does).
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

import parity_core as pc
from parity_public import CpuTensor, PoolDraws, PublicWeights, quiet

NETWORKS = {"G": "netG_A", "G_BA": "netG_B", "D_B": "netD_A", "D_A": "netD_B"}  # ours -> the public model's
# Our log names -> the public model's loss_* attributes (its G_A is our G, its D_A judges domain B).
LOSSES = {"G_GAN_B": "G_A", "G_GAN_A": "G_B", "cycle_A": "cycle_A", "cycle_B": "cycle_B", "idt_B": "idt_A",
          "idt_A": "idt_B", "consistency_B": "consistency_B", "mask_reg": "regularization_G_B", "G": "G",
          "D_B": "D_A", "D_A": "D_B"}
PACKAGES = ("models", "options", "util", "data")  # the checkout's top-level packages (the SRUNIT one's too)
PUBLIC_MODEL = "stego_gan"

# The README's Google_mismatch command: hiding after the last of 9 blocks, fusion block, lambda_reg 0.3,
# lambda_consistency 1.
README = ("--resnet_layer", "8", "--fusionblock", "--lambda_reg", "0.3", "--lambda_consistency", "1")


def _cases() -> dict[str, pc.Case]:
    base = [
        # The preset as the authors train it, with its double G step.
        pc.Case("stegogan-official", "stegogan-official", PUBLIC_MODEL, README, n_blocks=9, pool_size=50,
                public_repo="stegogan"),
        # The parser's default hiding point (--resnet_layer 3: 5 blocks after it), no fusion block, one mask for
        # every channel (--mask_group 1), other loss weights.
        pc.Case("stegogan-official-layer3", "stegogan-official", PUBLIC_MODEL,
                ("--resnet_layer", "3", "--mask_group", "1", "--lambda_reg", "0.2", "--lambda_consistency", "3"),
                overrides=("method.blocks_after_mask=5", "method.fusion=false", "method.mask_groups=1",
                           "method.lambda_reg=0.2", "method.lambda_consistency=3"), n_blocks=9, pool_size=50,
                public_repo="stegogan"),
        # A pool that fills within the run, so that its decisions are drawn and compared.
        pc.Case("stegogan-official-pool4", "stegogan-official", PUBLIC_MODEL, README, n_blocks=9, pool_size=4,
                public_repo="stegogan"),
    ]
    cases = {}
    for case in base:
        for batch in (1, 2):
            named = replace(case, name=f"{case.name}-b{batch}", batch_size=batch)
            cases[named.name] = named
    return cases


CASES = _cases()
SMALL_CASES = {c.name: c for c in (replace(c, name=f"{c.name}-s32", size=32, ngf=8, ndf=8) for c in CASES.values())}
ALL_CASES = {**CASES, **SMALL_CASES}


def is_stegogan(case: pc.Case) -> bool:
    return case.public_model == PUBLIC_MODEL


def public_argv(case: pc.Case) -> list[str]:
    """The public code's command line for ``case`` (its parser has no --netG: the model names its generators).
    One mask per trunk channel unless the case says otherwise (its --mask_group default, 256, is 4 x ngf 64)."""
    constant = case.steps - case.decay_steps
    argv = ["--model", PUBLIC_MODEL, "--gpu_ids", "-1", "--ngf", str(case.ngf), "--ndf", str(case.ndf),
            "--batch_size", str(case.batch_size), "--n_epochs", str(constant), "--n_epochs_decay",
            str(case.decay_steps), "--lr_policy", "linear", "--load_size", str(case.size), "--crop_size",
            str(case.size), *case.public_args]
    if "--mask_group" not in case.public_args:
        argv += ["--mask_group", str(4 * case.ngf)]
    if case.pool_size is not None:
        argv += ["--pool_size", str(case.pool_size)]
    return argv


# ----------------------------------------------------------------------------- importing the public code


def _stand_in(name: str) -> types.ModuleType:
    module = sys.modules.get(name) or types.ModuleType(name)
    sys.modules[name] = module
    return module


def import_public(code: Path) -> types.SimpleNamespace:
    """The checkout's modules, after taking any other checkout's ``models``/``options``/``util``/``data`` out of
    ``sys.modules``; empty modules stand in for torchvision and matplotlib where they cannot be imported."""
    if not (code / "models" / "stego_gan_model.py").is_file():
        raise SystemExit(f"error: {code} is not a checkout of the public StegoGAN code (no models/stego_gan_model.py)")
    try:
        import torchvision.transforms  # noqa: F401
    except Exception:  # noqa: BLE001 - any failure to import means: stand in
        transforms = _stand_in("torchvision.transforms")
        _stand_in("torchvision").transforms = transforms  # type: ignore[attr-defined]
        transforms.functional = _stand_in("torchvision.transforms.functional")  # type: ignore[attr-defined]
        # Read when its data module is imported (a default argument), never called by the harness.
        transforms.InterpolationMode = types.SimpleNamespace(BICUBIC="bicubic")  # type: ignore[attr-defined]
    try:
        import matplotlib.pyplot  # noqa: F401
    except Exception:  # noqa: BLE001
        _stand_in("matplotlib").pyplot = _stand_in("matplotlib.pyplot")  # type: ignore[attr-defined]
    for name in [m for m in sys.modules if m.split(".")[0] in PACKAGES]:
        del sys.modules[name]
    sys.path.insert(0, str(code))
    import models
    import models.networks
    import models.stego_gan_model
    import util.image_pool
    from options.train_options import TrainOptions

    return types.SimpleNamespace(models=models, networks=models.networks, model=models.stego_gan_model,
                                 image_pool=util.image_pool, TrainOptions=TrainOptions, code=code)



@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    """Its option parser reads sys.argv."""
    saved = sys.argv
    sys.argv = ["train.py", *argv]
    try:
        yield
    finally:
        sys.argv = saved


@contextlib.contextmanager
def _mask_network_of_the_generators_width(networks: Any) -> Iterator[None]:
    """Its ResnetMaskV3Generator builds its mask network for 256 input channels whatever --ngf is: for the
    harness's widths, 4 ngf (the channels of the features it masks)."""
    cls = networks.ResnetMaskV3Generator
    original = cls.__init__

    def init(self: Any, input_nc: int, output_nc: int, ngf: int = 64, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("input_dim", 4 * ngf)
        original(self, input_nc, output_nc, ngf, *args, **kwargs)

    cls.__init__ = init
    try:
        yield
    finally:
        cls.__init__ = original


# ----------------------------------------------------------------------------- the draws


class HostDraws(pc.TorchDraws):
    """`parity_core.TorchDraws` whose normal draws are `CpuTensor`s: the public model's ``.cuda()`` (which needs a
    GPU) leaves them on the CPU."""

    def randn(self, *size: Any, device: Any = None, dtype: Any = None, **kwargs: Any) -> torch.Tensor:
        return super().randn(*size, device=device, dtype=dtype, **kwargs).as_subclass(CpuTensor)


# ----------------------------------------------------------------------------- weights


def public_key_map(name: str, net: nn.Module) -> dict[str, str]:
    """Our state-dict keys of network ``name`` -> the public model's.

    Our generators are one flat layer list; the public ones split it into conv1 (the stem and both down-sampling
    stages), conv2 (the blocks before the hiding point), conv3 (the blocks after it) and decoder, with the fusion
    block in a Sequential of one and the mask network under the same names as ours. The discriminators are the
    public layout with ``layers.N`` for ``model.N``.
    """
    keys = list(net.state_dict())
    if name.startswith("D"):
        return {k: "model." + k[len("layers."):] for k in keys}
    blocks = [i for i, layer in enumerate(net.layers) if type(layer).__name__ == "ResnetBlock"]
    before = net.hiding_position - blocks[0]  # blocks before the hiding point
    out = {}
    for k in keys:
        if k.startswith("layers."):
            index, rest = k[len("layers."):].split(".", 1)
            i = int(index)
            if i < blocks[0]:
                out[k] = f"conv1.{i}.{rest}"
            elif i <= blocks[-1]:
                j = i - blocks[0]
                out[k] = f"conv2.{j}.{rest}" if j < before else f"conv3.{j - before}.{rest}"
            else:
                out[k] = f"decoder.{i - blocks[-1] - 1}.{rest}"
        elif k.startswith("fusion."):
            out[k] = "fusion.0." + k[len("fusion."):]
        else:
            out[k] = k  # mask.conv1 ... mask.conv3
    return out


# ----------------------------------------------------------------------------- the public side


class PublicRun(PublicWeights):
    """The public StegoGAN model of a case, with every draw routed through the harness (the interface of
    parity_vs_public.PublicRun: load, state, step, probe, network)."""

    def __init__(self, public: types.SimpleNamespace, case: pc.Case, draws: pc.Draws, workdir: Path,
                 torch_workaround: bool = True, side: str = "public",
                 instance_norm_hook: Any = None) -> None:
        self.public, self.case, self.draws, self.side = public, case, draws, side
        argv = public_argv(case) + ["--dataroot", str(workdir), "--checkpoints_dir", str(workdir), "--name", "parity"]
        with _argv(argv), quiet():
            opt = public.TrainOptions().gather_options()
        opt.isTrain, opt.gpu_ids = True, []
        self.opt = opt
        self.pool_random = PoolDraws(draws)
        with quiet(), _mask_network_of_the_generators_width(public.networks):
            self.model = public.models.create_model(opt)
        if torch_workaround and instance_norm_hook is not None:
            for attr in NETWORKS.values():
                instance_norm_hook(getattr(self.model, attr))
        for name, pool in (("B", self.model.fake_B_pool), ("A", self.model.fake_A_pool)):
            pool.query = self._pool_query(name, pool)
        with quiet():
            self.model.setup(opt)  # the learning-rate schedulers
        for attr in (*NETWORKS.values(), "criterionGAN"):
            getattr(self.model, attr).to(case.torch_dtype)

    def _pool_query(self, name: str, pool: Any) -> Any:
        query = pool.query

        def wrapped(images: torch.Tensor) -> torch.Tensor:
            self.pool_random.current, self.pool_random.size = name, pool.pool_size
            return query(images)
        return wrapped

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        p = self.public
        targets = [(p.model, "torch", HostDraws(self.draws)), (p.image_pool, "random", self.pool_random)]
        saved = [(m, name, getattr(m, name)) for m, name, _ in targets]
        for m, name, value in targets:
            setattr(m, name, value)
        try:
            yield
        finally:
            for m, name, value in saved:
                setattr(m, name, value)

    def network(self, ours: str) -> nn.Module:
        return getattr(self.model, NETWORKS[ours])

    def key_map(self, name: str, net: nn.Module) -> dict[str, str]:
        return public_key_map(name, net)

    def step(self, step: int, data: dict[str, torch.Tensor]) -> dict[str, float]:
        self.draws.begin(step, self.side)
        m = self.model
        n = data["A"].shape[0]
        m.set_input({**data, "A_paths": [f"A{i}" for i in range(n)], "B_paths": [f"B{i}" for i in range(n)]})
        with self.patched():
            m.optimize_parameters()
        with quiet():
            m.update_learning_rate()  # at the end of every (one-step) epoch
        return self.losses()

    def losses(self) -> dict[str, float]:
        """The losses of the last step under our names (its feature consistency, never added, left out)."""
        out = {ours: float(getattr(self.model, f"loss_{theirs}").detach()) for ours, theirs in LOSSES.items()}
        out["D"] = out["D_B"] + out["D_A"]
        return out

    @torch.no_grad()
    def probe(self, images: torch.Tensor) -> torch.Tensor:
        return self.network("G")(images).detach().clone()


if __name__ == "__main__":  # a module of the harness, not a script: running it did nothing, silently
    raise SystemExit(f"{__file__} is a module of the parity harness; run benchmarks/parity_vs_public.py (--help)")
