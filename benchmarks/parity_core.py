"""Training parity with the authors' public code: what `parity_vs_public.py` and the replay test share.

A parity case trains one of our presets and the matching public model from the same initial
weights on the same batches with the same random draws, and compares every logged loss at every
step, G's output on a fixed probe batch at the end, and every weight tensor.

Nothing random comes from either code base. The harness makes every draw itself from
``(seed, step, kind, index)`` with NumPy's legacy ``RandomState``, whose streams are frozen across
NumPy versions, and hands it to whichever code asks:

- initial weights: each of our parameters from its own key, copied into the public networks with
  the key mapping of `PublicNames`;
- batches and the probe batch: smooth random images in [-1, 1], one key per step;
- NCE patch positions (``patches``: a permutation of the H*W positions), the Eq. 3 layer
  (``layer``), the noise direction and magnitude, DRIT's codes and StegoGAN's noise on G_BA(y)
  (``normal``, ``uniform``), and the image-pool decisions (``pool-A``, ``pool-B``, ...: swap or not,
  and the slot).

Both codes' samplers run as they are; what the harness replaces is the random source they draw
from, for the length of a step (`replay_into_ours` for ours, each public runner for its code;
neither code base is changed on disk):

- patch positions: the public code takes the first P entries of ``np.random.permutation(H*W)``, one
  set for the whole batch; our `sample_patch_ids` takes the P largest of ``torch.rand(B, H*W)``, a
  set per image. The public code gets the harness's permutation as its ``np.random.permutation``;
  ours gets, as its ``torch.rand``, scores that rank the positions in that permutation's order (the
  same row for every image, as the public code shares its set), so its own top-P selection picks the
  same positions. That the two samplers draw from the same distribution (a uniformly random set of P
  positions; ours independently per image) is tested without the harness
  (tests/benchmarks/test_parity_samplers.py).
- the Eq. 3 layer: the public code calls ``np.random.choice(layers)``; our `Robustness.layers`
  calls ``np.random.default_rng((seed, step)).integers(K)``. Both get the same uniform index from
  the harness in place of their generator.
- noise and codes: ``torch.randn`` / ``torch.rand`` / ``torch.randn_like`` of the modules that call
  them. DRIT's draws are made per image (`TorchDraws(per_image=True)`): our content encoder draws
  the noise of both domains' codes in one call, the public code in one call per domain.

Each side logs the draws it asked for; a draw of ours that the public side did not ask for in the
same step, or asked for with another shape, fails the run.

A trace (`write_trace`, `read_trace`) holds what the public code produced: the case, the seeds,
per-step losses, the draws it asked for and G's probe output. `replay_trace` trains our code
against it without the public code.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from srunit.config import load_config
from srunit.engine.runner import StepRunner
from srunit.engine.schedule import Schedule

# Goals of the comparison (issue 16): step 1 equal to float32 rounding, every loss close at every
# step, G's probe output close after the last step.
STEP1_RTOL = 1e-6
LOSS_RTOL = 1e-4
PROBE_ATOL = 1e-3

TRACE_FORMAT = 1


@dataclass(frozen=True)
class Case:
    """One side-by-side run: our preset with overrides, and the public model with its options."""

    name: str
    preset: str
    public_model: str  # the public code's model: "srunit" (CUT with --reg 0), "cycle_gan", "gc_gan_share", ...
    public_args: tuple[str, ...]
    overrides: tuple[str, ...] = ()
    batch_size: int = 1
    steps: int = 20
    decay_steps: int = 10  # of `steps`: the learning rate decays linearly over the last ones
    size: int = 64
    ngf: int = 16
    ndf: int = 16
    n_blocks: int = 6
    seed: int = 0
    pool_size: int | None = None  # CycleGAN's image pool, both sides
    dtype: str = "float32"  # float32 (how both codes train), or float64 (exact-arithmetic reference)
    # Whose code: "srunit" (github SeanJia/SRUNIT), "gcgan" (hufu6371/GcGAN), "drit" (HsinYingLee/DRIT).
    public_repo: str = "srunit"
    # The public --inact_epochs as a fraction of the steps (rounded up, as our robust.start): the
    # warm-up then lasts as long on both sides whatever the number of steps. None: public_args decide.
    inact_fraction: float | None = None
    init: str = ""  # initial weights: "" = model.init_type's form; "drit" = DRIT's (see initial_weights)
    variant: str = ""  # how the public runner runs the public code, where it can run it more than one way
    probe_size: int = 0  # side of the probe images (0: ``size``); a trace holds G's output on them

    @property
    def torch_dtype(self) -> torch.dtype:
        return {"float32": torch.float32, "float64": torch.float64}[self.dtype]

    @property
    def label(self) -> str:
        return f"{self.name} {self.dtype}"

    @property
    def public_options(self) -> list[str]:
        """The public code's command line for this case (its option parser reads it)."""
        constant = self.steps - self.decay_steps
        args = ["--model", self.public_model, "--gpu_ids", "-1", "--ngf", str(self.ngf), "--ndf", str(self.ndf),
                "--netG", f"resnet_{self.n_blocks}blocks", "--batch_size", str(self.batch_size),
                "--n_epochs", str(constant), "--n_epochs_decay", str(self.decay_steps),
                "--load_size", str(self.size), "--crop_size", str(self.size), *self.public_args]
        if self.pool_size is not None:
            args += ["--pool_size", str(self.pool_size)]
        if self.inact_fraction is not None:
            args += ["--inact_epochs", str(self.inact_steps)]
        return args

    @property
    def inact_steps(self) -> int:
        """The public --inact_epochs of a warm-up case (one step per epoch): ceil(fraction * steps)."""
        assert self.inact_fraction is not None
        return math.ceil(self.inact_fraction * self.steps)

    @property
    def our_overrides(self) -> list[str]:
        out = [f"model.ngf={self.ngf}", f"model.ndf={self.ndf}", f"model.n_blocks={self.n_blocks}",
               f"train.batch_size={self.batch_size}", f"train.seed={self.seed}", "train.device=cpu",
               *self.overrides]
        if self.pool_size is not None:
            out.append(f"method.pool_size={self.pool_size}")
        return out


def _cases() -> dict[str, Case]:
    official = ("--reg", "0.001", "--reg_noise", "0.001", "--reg_type", "v2")
    base = [
        # The public repository's CUT path normalises F's outputs as its SRUNIT does ("shifted"); our
        # cut preset, like the public CUT code, as CUT does.
        Case("cut", "cut", "srunit", ("--CUT_mode", "CUT", "--reg", "0"), overrides=("model.projector_norm=shifted",)),
        # Eq. 3 on from the first step: the public --inact_epochs 0, our start 0.
        Case("srunit-official", "srunit-official", "srunit", (*official, "--inact_epochs", "0"),
             overrides=("method.robust.start=0",)),
        # The public warm-up: D only for the first quarter of the steps (5 of 20), as the preset.
        Case("srunit-official-warmup", "srunit-official", "srunit", official, inact_fraction=0.25),
        # CycleGAN with the strided (not anti-aliased) layout of its preset.
        Case("cyclegan", "cyclegan", "cycle_gan", ("--no_antialias", "--no_antialias_up"), pool_size=50),
        # A pool small enough to fill within the run, so that its decisions are drawn and compared.
        Case("cyclegan-pool4", "cyclegan", "cycle_gan", ("--no_antialias", "--no_antialias_up"), pool_size=4),
    ]
    cases = {}
    for case in base:
        for batch in (1, 2):
            named = replace(case, name=f"{case.name}-b{batch}", batch_size=batch)
            cases[named.name] = named
    return cases


def small_case(case: Case) -> Case:
    """The case at 32x32 with width-8 networks: what the committed traces hold (the replay test runs in
    float64, where a 64x64 width-16 case takes minutes)."""
    return replace(case, name=f"{case.name}-s32", size=32, ngf=8, ndf=8)


CASES = _cases()
SMALL_CASES = {c.name: c for c in map(small_case, CASES.values())}
ALL_CASES = {**CASES, **SMALL_CASES}


# ----------------------------------------------------------------------------- the draws


def _key(seed: int, step: int, kind: str, index: int) -> list[int]:
    """A RandomState seed for one draw; step -1 (the public data-dependent initialisation) is allowed."""
    return [seed, step + 1, zlib.crc32(kind.encode()), index]


@dataclass
class Draws:
    """Every random draw of a run, made from (seed, step, kind, index) and logged per side.

    ``begin(step, side)`` starts a step of one side: indices count from 0 per kind again, so the two
    sides get the same values as long as they ask for the same draws in the same order per kind.
    """

    seed: int
    step: int = -1
    side: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    log: dict[tuple[str, int], list[tuple[str, int, tuple[int, ...]]]] = field(default_factory=dict)
    pool_size: int = 0
    _pending_slot: int | None = None

    def begin(self, step: int, side: str) -> None:
        self.step, self.side, self.counters = step, side, {}
        self.log.setdefault((side, step), [])

    def _next(self, kind: str, params: tuple[int, ...]) -> np.random.RandomState:
        index = self.counters.get(kind, 0)
        self.counters[kind] = index + 1
        self.log[(self.side, self.step)].append((kind, index, tuple(int(p) for p in params)))
        return np.random.RandomState(_key(self.seed, self.step, kind, index))

    def permutation(self, n: int) -> np.ndarray:
        """A permutation of range(n): its first P entries are the patch positions of one feature layer."""
        return self._next("patches", (n,)).permutation(n)

    def layer(self, count: int) -> int:
        """The index of the one Eq. 3 layer of a step, uniform in range(count)."""
        return int(self._next("layer", (count,)).randint(count))

    def normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.from_numpy(self._next("normal", shape).standard_normal(shape).astype(np.float32))

    def uniform(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.from_numpy(self._next("uniform", shape).random_sample(shape).astype(np.float32))

    def pool(self, name: str, size: int) -> tuple[bool, int]:
        """One decision of a full image pool: whether the image swaps with a stored one, and the slot."""
        rng = self._next(f"pool-{name}", (size,))
        return bool(rng.random_sample() < 0.5), int(rng.randint(size))

    def asked(self, side: str, step: int) -> list[tuple[str, int, tuple[int, ...]]]:
        return self.log.get((side, step), [])


def check_draws(ours: list, public: list) -> str | None:
    """None if every draw our step asked for was asked for by the public step, with the same shape;
    else what differs. The public code may ask for more (it runs Eq. 3's pass during its warm-up)."""
    theirs = {(kind, index): params for kind, index, params in public}
    for kind, index, params in ours:
        if (kind, index) not in theirs:
            return f"ours asked for {kind} #{index} {params}, the public code did not"
        if theirs[(kind, index)] != params:
            return f"{kind} #{index}: ours asked for {params}, the public code for {theirs[(kind, index)]}"
    return None


def torch_shape(size: tuple[Any, ...]) -> tuple[int, ...]:
    """The shape of a torch.randn/rand call: varargs, or one tuple, list or torch.Size."""
    if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


class TorchDraws:
    """Stands in for the `torch` module of a code module: ``randn``, ``randn_like`` and ``rand`` come
    from `Draws`, everything else is torch's.

    With ``per_image`` a draw of shape (B, ...) is B draws of shape (1, ...), one per image: then a
    code that draws for two images at once gets what a code drawing for each alone gets.
    """

    def __init__(self, draws: Draws, per_image: bool = False) -> None:
        self._draws = draws
        self._per_image = per_image

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    def _draw(self, kind: Callable[[tuple[int, ...]], torch.Tensor], shape: tuple[int, ...]) -> torch.Tensor:
        if self._per_image and len(shape) > 1:
            return torch.cat([kind((1, *shape[1:])) for _ in range(shape[0])])
        return kind(shape)

    def randn(self, *size: Any, device: Any = None, dtype: Any = None, **_: Any) -> torch.Tensor:
        return self._draw(self._draws.normal, torch_shape(size)).to(device=device,
                                                                    dtype=dtype or torch.get_default_dtype())

    def randn_like(self, x: torch.Tensor, **_: Any) -> torch.Tensor:
        return self._draw(self._draws.normal, tuple(x.shape)).to(device=x.device, dtype=x.dtype)

    def rand(self, *size: Any, device: Any = None, dtype: Any = None, **_: Any) -> torch.Tensor:
        return self._draw(self._draws.uniform, torch_shape(size)).to(device=device,
                                                                     dtype=dtype or torch.get_default_dtype())


class PatchScores:
    """Stands in for the `torch` of our patch sampler (`srunit.networks.projection`): its
    ``torch.rand(B, N)`` gets scores that rank the N positions in the order of the harness's
    permutation (``patches``, what the public code gets as ``np.random.permutation(N)``), the same
    row for every image. Our sampler's own top-P selection then picks the first P positions of that
    permutation, as the public code does. Everything else is torch's."""

    def __init__(self, draws: Draws) -> None:
        self._draws = draws

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    def rand(self, *size: Any, device: Any = None, dtype: Any = None, **_: Any) -> torch.Tensor:
        shape = torch_shape(size)
        if len(shape) != 2:
            raise AssertionError(f"the patch sampler drew scores of shape {shape}; the harness expects (B, H*W)")
        b, n = shape
        order = self._draws.permutation(n)
        scores = np.empty(n)
        scores[order] = np.arange(n, 0, -1) / n  # distinct, largest first in permutation order
        row = torch.from_numpy(scores).to(device=device, dtype=dtype or torch.get_default_dtype())
        return row[None].expand(b, n)


class LayerDraws:
    """Stands in for the `np` of our Eq. 3 layer sampler (`srunit.methods.terms.robustness`): the
    generator ``np.random.default_rng(...)`` returns draws ``integers(K)`` from the harness's ``layer``
    (what the public code gets as ``np.random.choice`` of its K layers). Everything else is NumPy's."""

    def __init__(self, draws: Draws) -> None:
        self._draws = draws
        self.random = SimpleNamespace(default_rng=self._generator)

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    def _generator(self, seed: Any = None) -> SimpleNamespace:
        def integers(count: int) -> int:
            return self._draws.layer(int(count))

        return SimpleNamespace(integers=integers)


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """torch's default dtype while the block runs: float64 runs draw their noise in float64 too, so
    that both codes normalise the same noise direction without float32 rounding."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


# ----------------------------------------------------------------------------- data and weights


def images(seed: int, step: int, kind: str, n: int, size: int) -> torch.Tensor:
    """n smooth random RGB images (n, 3, size, size) in [-1, 1]: a few random plane waves per channel
    and a little pixel noise, from their own key (NumPy only, so the same on every machine)."""
    rng = np.random.RandomState(_key(seed, step, kind, 0))
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij")).astype(np.float64) / size
    out = np.zeros((n, 3, size, size))
    for i in range(n):
        for c in range(3):
            for _ in range(4):
                freq = rng.uniform(-6, 6, size=2)
                out[i, c] += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * (freq[0] * grid[0] + freq[1] * grid[1])
                                                            + rng.uniform(0, 2 * np.pi))
    out += 0.1 * rng.standard_normal(out.shape)
    return torch.from_numpy(np.tanh(out).astype(np.float32))


def batch(case: Case, step: int) -> dict[str, torch.Tensor]:
    return {"A": images(case.seed, step, "A", case.batch_size, case.size).to(case.torch_dtype),
            "B": images(case.seed, step, "B", case.batch_size, case.size).to(case.torch_dtype)}


def probe_batch(case: Case) -> torch.Tensor:
    """The fixed batch G translates after the run: 2 domain-A images no step trained on."""
    return images(case.seed, 10**6, "probe", 2, case.probe_size or case.size).to(case.torch_dtype)


def initial_weights(net: nn.Module, init_type: str, seed: int, index: int) -> dict[str, torch.Tensor]:
    """Initial values of ``net``'s parameters as both codes initialise them, each tensor from its own key.

    ``normal``: weights normal with std 0.02, biases 0; ``xavier``: xavier-normal with gain 0.02,
    biases 0; ``drit``: as DRIT's code initialises (conv and transposed-conv weights normal with std
    0.02; linear weights and every bias uniform in +-1/sqrt(fan_in), PyTorch's default; layer-norm
    weights 1 and biases 0).
    """
    if init_type == "drit":
        return _drit_weights(net, seed, index)
    out = {}
    for name, p in net.named_parameters():
        if name.endswith("bias") or p.dim() < 2:
            out[name] = torch.zeros_like(p)
            continue
        fan_in, fan_out = _fans(p)
        std = 0.02 if init_type == "normal" else 0.02 * math.sqrt(2.0 / (fan_in + fan_out))
        out[name] = _normal(std, p.shape, seed, index, name)
    return out


def _fans(p: torch.Tensor) -> tuple[int, int]:
    receptive = int(np.prod(p.shape[2:])) if p.dim() > 2 else 1
    return p.shape[1] * receptive, p.shape[0] * receptive


def _rng(seed: int, index: int, name: str) -> np.random.RandomState:
    return np.random.RandomState(_key(seed, -1, f"init-{index}-{name}", 0))


def _normal(std: float, shape: torch.Size, seed: int, index: int, name: str) -> torch.Tensor:
    return torch.from_numpy((std * _rng(seed, index, name).standard_normal(tuple(shape))).astype(np.float32))


def _drit_weights(net: nn.Module, seed: int, index: int) -> dict[str, torch.Tensor]:
    out = {}
    for prefix, module in net.named_modules():
        for leaf, p in module.named_parameters(recurse=False):
            name = f"{prefix}.{leaf}" if prefix else leaf
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                if leaf == "weight" and not isinstance(module, nn.Linear):
                    out[name] = _normal(0.02, p.shape, seed, index, name)
                    continue
                # ConvTranspose2d weights are (in, out, k, k): fan_in is dim 1 times the kernel, as PyTorch's.
                bound = 1.0 / math.sqrt(_fans(module.weight)[0])
                u = _rng(seed, index, name).uniform(-bound, bound, tuple(p.shape))
                out[name] = torch.from_numpy(u.astype(np.float32))
            else:  # a layer norm's per-channel scale and shift
                out[name] = torch.ones_like(p) if leaf == "weight" else torch.zeros_like(p)
    return out


def instance_norm_biases(net: nn.Module, features_read: bool = False) -> set[str]:
    """Names of the conv biases whose output goes only into an InstanceNorm: their true gradient is 0.

    With ``features_read`` (a method with a patch head F reads G's feature layers), a conv whose output
    is one of them (positions 4 and 8 by default: PatchNCE and Eq. 3 read it before the norm) has a
    true bias gradient, so it is not among them.
    """
    features = {f"layers.{i}" for i in getattr(net, "feature_layers", ())} if features_read else set()
    names = set()
    for prefix, module in net.named_modules():
        children = list(module.named_children())
        for (name, a), (_, b) in zip(children, children[1:]):
            full = f"{prefix}.{name}" if prefix else name
            if (isinstance(a, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(b, nn.InstanceNorm2d)
                    and a.bias is not None and full not in features):
                names.add(f"{full}.bias")
    return names


# ----------------------------------------------------------------------------- our side


def build_ours(case: Case) -> StepRunner:
    """Our preset for ``case`` in a StepRunner (the trainer's step), on the harness's initial weights."""
    config = load_config(case.preset).with_overrides(case.our_overrides)
    schedule = Schedule(steps_per_epoch=1, total_steps=case.steps, decay_steps=case.decay_steps)
    runner = StepRunner(config, torch.device("cpu"), schedule)
    with torch.no_grad():
        for index, (_name, net) in enumerate(sorted(runner.method.networks().items())):
            for key, value in initial_weights(net, case.init or config.model.init_type, case.seed, index).items():
                net.get_parameter(key).copy_(value)
    runner.method.to(case.torch_dtype)  # the same Parameter objects: the optimizers keep them
    return runner


@contextmanager
def replay_into_ours(runner: StepRunner, draws: Draws) -> Iterator[None]:
    """Route every random draw of our method through ``draws`` while the block runs: our samplers run
    as they are, on the harness's random source (see the module docstring)."""
    import srunit.losses.robustness as robustness
    import srunit.methods.drit as drit_method
    import srunit.methods.stegogan as stegogan
    import srunit.methods.terms.robustness as robust_term
    import srunit.networks.drit as drit_networks
    import srunit.networks.projection as projection

    method = runner.method
    saved: list[tuple[Any, str, Any]] = []

    def put(owner: Any, name: str, value: Any) -> None:
        """Set owner.name (a module's or an instance's own attribute) until the block ends."""
        saved.append((owner, name, vars(owner).get(name, _MISSING)))
        setattr(owner, name, value)

    put(projection, "torch", PatchScores(draws))  # sample_patch_ids: the NCE and Eq. 3 positions
    put(robust_term, "np", LayerDraws(draws))  # Robustness.layers: the one Eq. 3 layer of a step
    put(robustness, "torch", TorchDraws(draws))  # sample_feature_noise: tau_k
    put(drit_method, "torch", TorchDraws(draws, per_image=True))  # the random codes z, reparameterisation
    put(drit_networks, "torch", TorchDraws(draws, per_image=True))  # the content encoder's noise
    put(stegogan, "torch", TorchDraws(draws))  # StegoGAN's noise on G_BA(y)
    for name, pool in getattr(method, "pools", {}).items():
        def pool_draw(n: int, device: torch.device, name: str = name,
                      size: int = pool.size) -> tuple[torch.Tensor, torch.Tensor]:
            decisions = [draws.pool(name, size) for _ in range(n)]
            return (
                torch.tensor([s for s, _ in decisions], device=device),
                torch.tensor([slot for _, slot in decisions], dtype=torch.int64, device=device),
            )

        put(pool, "_draw", pool_draw)
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            if value is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, value)


_MISSING = object()


def our_step(runner: StepRunner, draws: Draws, step: int, data: dict[str, torch.Tensor]) -> dict[str, float]:
    draws.begin(step, "ours")
    with replay_into_ours(runner, draws):
        logs = runner.train_step(data)
    return {k: float(v) for k, v in logs.items()}


def probe_attribute(case: Case, nz: int) -> torch.Tensor:
    """The attribute codes (2, nz) a multimodal generator (DRIT's) translates the probe batch with."""
    rng = np.random.RandomState(_key(case.seed, 10**6, "probe-attribute", 0))
    return torch.from_numpy(rng.standard_normal((2, nz)).astype(np.float32))


@torch.no_grad()
def our_probe(runner: StepRunner, probe: torch.Tensor, case: Case) -> torch.Tensor:
    """G's output on the probe batch, in eval mode (DRIT's content encoder adds noise in training mode)."""
    translator = runner.method.generator
    modes = {m: m.training for m in translator.modules()}
    translator.eval()
    try:
        if getattr(translator, "multimodal", False):
            out = translator(probe, probe_attribute(case, translator.nz).to(probe.dtype))
        else:
            out = translator(probe)
    finally:
        for m, training in modes.items():
            m.train(training)
    return out.detach().clone()


# ----------------------------------------------------------------------------- comparing


def relative(a: float, b: float) -> float:
    """|a - b| / max(|a|, |b|), 0 when both are 0."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def loss_differences(ours: dict[str, float], public: dict[str, float]) -> dict[str, float]:
    """Relative difference of every loss both sides logged (their names as ours)."""
    return {k: relative(ours[k], public[k]) for k in public if k in ours}


@dataclass
class StepRecord:
    step: int
    ours: dict[str, float]
    public: dict[str, float]

    @property
    def differences(self) -> dict[str, float]:
        return loss_differences(self.ours, self.public)

    @property
    def largest(self) -> float:
        return max(self.differences.values(), default=0.0)


@dataclass
class Outcome:
    """What one case measured: per step losses, the probe difference, and weight differences."""

    case: Case
    steps: list[StepRecord]
    probe_difference: float  # max |ours - public| of G's probe output, in [-1, 1] units
    weight_difference: float | None = None  # max over tensors of max|a - b| / max|a|, IN-fed biases excluded
    in_bias_difference: float | None = None  # the same over the conv biases that feed an InstanceNorm
    draw_problem: str | None = None
    control: list[StepRecord] | None = None  # the public code against itself, nudged by one ulp
    control_probe_difference: float | None = None

    @property
    def control_loss_difference(self) -> float | None:
        return None if self.control is None else max((s.largest for s in self.control), default=0.0)

    def verdict(self) -> str:
        """Within the goals; else whether the control moved as far (rounding amplified by training)."""
        problems = self.failures()
        if not problems:
            return "within the goals"
        text = "; ".join(problems)
        if self.draw_problem or self.control is None or self.control_probe_difference is None:
            return text
        # The same order as the public code's own rounding sensitivity: at most 10x the control.
        if self.largest_loss_difference <= 10 * max(
            self.control_loss_difference or 0.0, 1e-30
        ) and self.probe_difference <= 10 * max(self.control_probe_difference, 1e-30):
            return f"{text}; the same order as the control"
        return f"{text}; beyond the control"

    @property
    def largest_loss_difference(self) -> float:
        return max((s.largest for s in self.steps), default=0.0)

    @property
    def step1_difference(self) -> float:
        return self.steps[0].largest if self.steps else 0.0

    def failures(self) -> list[str]:
        out = []
        if self.draw_problem:
            out.append(self.draw_problem)
        if self.step1_difference > STEP1_RTOL:
            out.append(f"step 1 losses differ by {self.step1_difference:.2e} relative (goal {STEP1_RTOL:g})")
        if self.largest_loss_difference > LOSS_RTOL:
            worst = max(self.steps, key=lambda s: s.largest)
            name = max(worst.differences, key=worst.differences.get)
            out.append(
                f"loss {name} at step {worst.step + 1} differs by {worst.largest:.2e} relative (goal {LOSS_RTOL:g})"
            )
        if not self.probe_difference <= PROBE_ATOL:
            out.append(f"G's probe output differs by {self.probe_difference:.2e} (goal {PROBE_ATOL:g})")
        return out


def tensor_differences(ours: dict[str, torch.Tensor], public: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per tensor: max |a - b| relative to the tensor's largest magnitude (its own scale)."""
    out = {}
    for name, a in ours.items():
        b = public[name].to(a.dtype)
        scale = max(float(a.abs().max()), float(b.abs().max()), 1e-30)
        out[name] = float((a - b).abs().max()) / scale
    return out


def weight_differences(
    ours: dict[str, torch.Tensor], public: dict[str, torch.Tensor], in_biases: set[str]
) -> tuple[float, float]:
    """(largest `tensor_differences` over the weight tensors, the same over the IN-fed conv biases)."""
    each = tensor_differences(ours, public)
    rest = [v for k, v in each.items() if k not in in_biases]
    biases = [v for k, v in each.items() if k in in_biases]
    return max(rest, default=0.0), max(biases, default=0.0)


# ----------------------------------------------------------------------------- traces


def write_trace(path: Path, outcome: Outcome, draws: Draws, probe: torch.Tensor) -> None:
    """What the public code produced in ``outcome``'s case, for `replay_trace` (a few hundred kB)."""
    meta = {
        "format": TRACE_FORMAT,
        "case": asdict(outcome.case),
        "public_losses": [s.public for s in outcome.steps],
        "public_draws": [[list(d[:2]) + [list(d[2])] for d in draws.asked("public", s.step)] for s in outcome.steps],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"probe": probe.contiguous()}, str(path), metadata={"trace": json.dumps(meta)})


def read_trace(path: Path) -> tuple[Case, list[dict[str, float]], list[list], torch.Tensor]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["trace"])
    if meta.get("format") != TRACE_FORMAT:
        raise ValueError(f"{path}: trace format {meta.get('format')}, expected {TRACE_FORMAT}")
    case_fields = dict(meta["case"])
    case_fields["public_args"] = tuple(case_fields["public_args"])
    case_fields["overrides"] = tuple(case_fields["overrides"])
    draws = [[(kind, index, tuple(params)) for kind, index, params in step] for step in meta["public_draws"]]
    return Case(**case_fields), meta["public_losses"], draws, load_file(str(path))["probe"]


def replay_trace(path: Path, progress: Callable[[str], None] | None = None, steps: int | None = None) -> Outcome:
    """Train our code as the trace's case did and compare it with the public code's recorded figures:
    every step, or the first ``steps`` (then G's probe output is not compared: it is the last step's)."""
    case, public_losses, public_draws, public_probe = read_trace(path)
    with default_dtype(case.torch_dtype):
        return _replay(case, public_losses, public_draws, public_probe, progress, steps)


def _replay(
    case: Case,
    public_losses: list[dict[str, float]],
    public_draws: list[list],
    public_probe: torch.Tensor,
    progress: Callable[[str], None] | None,
    steps: int | None,
) -> Outcome:
    runner = build_ours(case)
    draws = Draws(case.seed)
    records = []
    problem = None
    for step in range(case.steps if steps is None else steps):
        logs = our_step(runner, draws, step, batch(case, step))
        records.append(StepRecord(step, logs, public_losses[step]))
        problem = problem or check_draws(draws.asked("ours", step), public_draws[step])
        if progress:
            progress(f"step {step + 1}: largest loss difference {records[-1].largest:.2e}")
    probe = 0.0
    if steps is None or steps == case.steps:
        probe = float((our_probe(runner, probe_batch(case), case) - public_probe).abs().max())
    return Outcome(case, records, probe, draw_problem=problem)


if __name__ == "__main__":  # a module of the harness, not a script: running it did nothing, silently
    raise SystemExit(f"{__file__} is a module of the parity harness; run benchmarks/parity_vs_public.py (--help)")
