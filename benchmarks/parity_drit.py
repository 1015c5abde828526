"""DRIT beside its public code (github.com/HsinYingLee/DRIT, src/) in the parity harness (parity_vs_public.py).

Our `drit` preset against the public ``DRIT`` model with its default concat variant and mode seeking
(and, as ``drit-no-ms``, against ``--no_ms``). The harness plays the public train.py's part: each
step it calls the model's ``update_D`` and ``update_EG`` (a full step) or ``update_D_content`` alone,
then ``update_lr`` at the end of the one-step epoch. Every random draw (the content encoder's noise,
the reparameterisation, the random codes) comes from the harness, per image (`parity_core.TorchDraws`).

What the harness decides, to compare like with like (each a difference our preset names, see
src/srunit/presets/drit.yaml and docs/parity.md):

- the step pattern: full steps where ours has them (the first of every ``d_iter`` steps); the public
  train.py makes the last of each ``d_iter`` iterations full.
- the batch: the public model encodes the first image of its batch of two and shows the second to
  its random-code discriminators as a real image; ours encodes every image and shows it to both. The
  public model gets our one image twice.
- the schedule: the public factor 1 - max(0, ep - n_ep_decay) / (n_ep - n_ep_decay + 1) decays one
  epoch later than ours; ``--n_ep`` and ``--n_ep_decay`` are given one less than ours (the same factor
  at every step).
- the second generator update (``backward_G_alone``) back-propagates through the step's forward pass
  after ``update_EG`` has changed the weights in place. torch 0.4, which the code was written for,
  let it (its optimizer steps went through ``.data``, which autograd did not track); the backward then
  combined the activations from before the update with the weights after it. torch 2 refuses. By
  default the harness recomputes the random-code translations (and their attribute codes) of the
  step's images and codes at the updated weights before that backward, as ours does; variant
  ``torch0.4`` (case ``drit-torch04``) resets the weights' version counters instead, so that the
  backward runs as it ran on torch 0.4 (`torch._C._autograd._unsafe_set_version_counter`).

Where the public code cannot run as it is, the harness does the least that lets it, in memory: its
model and networks modules move new tensors to the GPU (``.cuda(self.gpu)``, ``.cuda(x.get_device())``);
while they run their ``torch`` is a `parity_public.CpuTorch`, whose tensors stay on the CPU.

Its widths are fixed in its code (64 first channels, a 256-channel content code), and its content
discriminator needs crops of at least 209 px; a step at 216 px takes minutes in float64 on a CPU.
The small form (``-w8``, what the committed traces hold) narrows the public networks in memory to
our width 8: each public parameter becomes the tensor of the matching parameter of ours (its code
and layer structure unchanged; every layer's forward reads its widths from its weights).
"""

from __future__ import annotations

import importlib
import types
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

import parity_core as pc
from parity_public import CpuTorch, PublicCode, quiet, replaced

# Its losses call torch's deprecated nn.functional.sigmoid (the same function as torch.sigmoid).
warnings.filterwarnings("ignore", message=r"nn\.functional\.sigmoid is deprecated")

# Our network name -> the public model's attribute.
NETWORKS = {"E_c": "enc_c", "E_a": "enc_a", "G": "gen", "D_A": "disA", "D_A2": "disA2", "D_B": "disB",
            "D_B2": "disB2", "D_content": "disContent"}
# Per network, (our prefix, public prefix) pairs whose parameters correspond in order, where the two
# codes register their parts in different orders; the others correspond as a whole.
PARTS = {
    "E_c": [("domain_a.", "convA."), ("domain_b.", "convB."), ("shared.", "conv_share.")],
    "E_a": [("features_a.", "conv_A."), ("mu_a.", "fc_A."), ("logvar_a.", "fcVar_A."),
            ("features_b.", "conv_B."), ("mu_b.", "fc_B."), ("logvar_b.", "fcVar_B.")],
}
PUBLIC_WIDTH = 64  # the public code's first width (ngf and ndf alike)
D_ITER = 3  # both sides' default: of every 3 steps one is full


def _cases() -> dict[str, pc.Case]:
    # 216 px, the public default crop (its content discriminator takes 209 px at least); the probe
    # translates 32 px images (the translation alone has no such limit), which keeps the traces small.
    base = pc.Case("drit", "drit", "DRIT", (), size=216, ngf=PUBLIC_WIDTH, ndf=PUBLIC_WIDTH, public_repo="drit",
                   init="drit", probe_size=32)
    return {
        "drit-b1": base,
        "drit-no-ms-b1": replace(base, name="drit-no-ms", public_args=("--no_ms",),
                                 overrides=("method.mode_seeking=false",)),
        # The public second generator update as torch 0.4 ran it (see the module docstring).
        "drit-torch04-b1": replace(base, name="drit-torch04", variant="torch0.4"),
    }


def _named(cases: dict[str, pc.Case]) -> dict[str, pc.Case]:
    return {name: replace(case, name=name) for name, case in cases.items()}


def small_case(case: pc.Case) -> pc.Case:
    """``case`` with width-8 networks on both sides (the public ones narrowed: see the module docstring)."""
    return replace(case, name=f"{case.name}-w8", ngf=8, ndf=8)


CASES = _named(_cases())
SMALL_CASES = {c.name: c for c in map(small_case, CASES.values())}


def options(case: pc.Case, workdir: Path) -> list[str]:
    """The public command line of ``case`` (its option parser reads it)."""
    constant = case.steps - case.decay_steps
    return ["--dataroot", str(workdir), "--batch_size", "2", "--resize_size", str(case.size),
            "--crop_size", str(case.size), "--n_ep", str(case.steps - 1), "--n_ep_decay", str(constant - 1),
            "--d_iter", str(D_ITER), "--concat", "1", "--dis_scale", "3", "--dis_norm", "None", *case.public_args]


def import_public(code: Path) -> types.SimpleNamespace:
    """The public DRIT code's modules (`PublicCode`: its modules ``model``, ``networks`` and ``options``)."""
    if not (code / "src" / "model.py").is_file():
        raise SystemExit(f"error: {code} is not a checkout of the public DRIT code (no src/model.py)")
    repo = PublicCode(code / "src", ("model", "networks", "options", "dataset", "saver"))
    with repo.active():
        model, networks, options = (importlib.import_module(name) for name in ("model", "networks", "options"))
    return types.SimpleNamespace(repo=repo, model=model, networks=networks, TrainOptions=options.TrainOptions)


def key_map(name: str, ours: nn.Module, theirs: nn.Module) -> dict[str, str]:
    """Our parameter names -> the public network's, part by part in order (`PARTS`)."""
    out = {}
    mine, public = list(dict(ours.named_parameters())), list(dict(theirs.named_parameters()))
    for our_prefix, public_prefix in PARTS.get(name, [("", "")]):
        a = [k for k in mine if k.startswith(our_prefix)]
        b = [k for k in public if k.startswith(public_prefix)]
        if len(a) != len(b):
            raise SystemExit(f"DRIT {name}: {len(a)} parameters under {our_prefix!r}, {len(b)} under the public "
                             f"{public_prefix!r}")
        out.update(zip(a, b))
    if len(out) != len(mine) or len(set(out.values())) != len(public):
        raise SystemExit(f"DRIT {name}: the parameters do not correspond one to one")
    return out


def _set_instance_norm_widths(net: nn.Module) -> None:
    """After narrowing: each InstanceNorm2d of a Sequential gets the width of the conv before it (only
    its warning about the width reads it; without affine parameters the norm has no width of its own)."""
    for seq in net.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        width = None
        for layer in seq:
            if isinstance(layer, nn.Conv2d):
                width = layer.weight.shape[0]
            elif isinstance(layer, nn.ConvTranspose2d):
                width = layer.weight.shape[1]
            elif isinstance(layer, nn.InstanceNorm2d) and width is not None:
                layer.num_features = width


class PublicRun:
    """The public DRIT model of a case, with every draw routed through the harness."""

    def __init__(self, public: types.SimpleNamespace, case: pc.Case, draws: pc.Draws, workdir: Path,
                 side: str = "public") -> None:
        self.public, self.case, self.draws, self.side = public, case, draws, side
        self.opts = public.TrainOptions().parser.parse_args(options(case, workdir))
        with public.repo.active(), quiet():
            self.model = public.model.DRIT(self.opts)
            self.model.initialize()
            self.model.set_scheduler(self.opts, last_ep=-1)
        self.model.gpu = -1  # read by its .cuda(self.gpu) calls, which the harness makes no-ops
        self._maps: dict[str, dict[str, str]] = {}
        self._versions: list[tuple[torch.Tensor, int]] = []
        m = self.model
        backward_eg, backward_g_alone = m.backward_EG, m.backward_G_alone

        def eg() -> None:
            backward_eg()
            self._versions = [(p, p._version) for net in (m.enc_c, m.enc_a, m.gen) for p in net.parameters()]

        def g_alone() -> None:
            if case.variant == "torch0.4":
                torch._C._autograd._unsafe_set_version_counter([p for p, _ in self._versions],
                                                               [v for _, v in self._versions])
            else:
                self._regenerate()
            backward_g_alone()

        m.backward_EG, m.backward_G_alone = eg, g_alone

    def _regenerate(self) -> None:
        """What the public second generator update reads, computed again at the updated weights with the
        public networks: the content codes of the step's images, their translations with the step's
        random codes, and the attribute codes of those translations (as our G phase does)."""
        m = self.model
        m.z_content_a, m.z_content_b = m.enc_c.forward(m.real_A_encoded, m.real_B_encoded)
        k = m.z_content_a.size(0)
        codes = [m.z_random] if m.no_ms else [m.z_random, m.z_random2]
        out_a = m.gen.forward_a(torch.cat([m.z_content_b] * len(codes)), torch.cat(codes))
        out_b = m.gen.forward_b(torch.cat([m.z_content_a] * len(codes)), torch.cat(codes))
        m.fake_A_random, *rest_a = torch.split(out_a, k)
        m.fake_B_random, *rest_b = torch.split(out_b, k)
        if not m.no_ms:
            m.fake_A_random2, m.fake_B_random2 = rest_a[0], rest_b[0]
        m.mu2_a, _, m.mu2_b, _ = m.enc_a.forward(m.fake_A_random, m.fake_B_random)

    def network(self, ours: str) -> nn.Module:
        return getattr(self.model, NETWORKS[ours])

    def load(self, ours: dict[str, nn.Module], nudge: bool = False) -> None:
        """Copy our networks' weights into the public ones (narrowing them where ours are narrower); with
        ``nudge`` each then moves up by one unit in the last place (the control run)."""
        with torch.no_grad():
            for name, net in ours.items():
                target = self.network(name).to(self.case.torch_dtype)
                self._maps[name] = mapping = key_map(name, net, target)
                theirs = dict(target.named_parameters())
                narrowed = False
                for key, value in net.named_parameters():
                    param = theirs[mapping[key]]
                    if param.shape != value.shape:
                        if self.case.ngf == PUBLIC_WIDTH and self.case.ndf == PUBLIC_WIDTH:
                            raise SystemExit(f"DRIT {name}.{key} {tuple(value.shape)} is the public "
                                             f"{mapping[key]} {tuple(param.shape)}")
                        if param.dim() != value.dim() or any(a > b for a, b in zip(value.shape, param.shape)):
                            raise SystemExit(f"DRIT {name}.{key} {tuple(value.shape)} does not narrow the public "
                                             f"{mapping[key]} {tuple(param.shape)}")
                        param.data = value.detach().clone()  # the same Parameter: the optimizers keep it
                        narrowed = True
                    else:
                        param.copy_(value)
                    if nudge:
                        param.copy_(torch.nextafter(param, torch.full_like(param, float("inf"))))
                if narrowed:
                    _set_instance_norm_widths(target)

    def state(self, ours: dict[str, nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
        """The public weights under our names."""
        out = {}
        for name, net in ours.items():
            theirs = dict(self.network(name).named_parameters())
            out[name] = {k: theirs[self._maps[name][k]].detach().clone() for k, _ in net.named_parameters()}
        return out

    def _patched(self) -> Any:
        torch_stand_in = CpuTorch(randn=pc.TorchDraws(self.draws, per_image=True))
        return replaced([(self.public.model, "torch", torch_stand_in), (self.public.networks, "torch", torch_stand_in)])

    def step(self, step: int, data: dict[str, torch.Tensor]) -> dict[str, float]:
        self.draws.begin(step, self.side)
        m = self.model
        # The public batch of two: the image it encodes, and the real image of its random-code
        # discriminators; ours shows the one image to both.
        a, b = torch.cat([data["A"], data["A"]]), torch.cat([data["B"], data["B"]])
        full = step % D_ITER == 0
        with self._patched():
            if full:
                m.update_D(a, b)
                m.update_EG()
            else:
                m.update_D_content(a, b)
        m.update_lr()  # at the end of every (one-step) epoch
        return self.losses(full)

    def losses(self, full: bool) -> dict[str, float]:
        """The losses of the last step under our names."""
        m = self.model
        if not full:
            return {"D_content": float(m.disContent_loss)}
        names = {"D_A": "disA_loss", "D_A2": "disA2_loss", "D_B": "disB_loss", "D_B2": "disB2_loss",
                 "D_content": "disContent_loss", "G_GAN_A": "gan_loss_a", "G_GAN_B": "gan_loss_b",
                 "G_content_A": "gan_loss_acontent", "G_content_B": "gan_loss_bcontent",
                 "cycle_A": "l1_recon_A_loss", "cycle_B": "l1_recon_B_loss", "self_A": "l1_recon_AA_loss",
                 "self_B": "l1_recon_BB_loss", "KL_attr_A": "kl_loss_za_a", "KL_attr_B": "kl_loss_za_b",
                 "KL_content_A": "kl_loss_zc_a", "KL_content_B": "kl_loss_zc_b", "EG": "G_loss",
                 "G_GAN2_A": "gan2_loss_a", "G_GAN2_B": "gan2_loss_b", "latent_A": "l1_recon_z_loss_a",
                 "latent_B": "l1_recon_z_loss_b"}
        if not m.no_ms:  # lz_AB: the translations into B
            names.update(mode_seeking_A="lz_BA", mode_seeking_B="lz_AB")
        out = {ours: float(getattr(m, theirs)) for ours, theirs in names.items()}
        second = ("G_GAN2_A", "G_GAN2_B", "latent_A", "latent_B", "mode_seeking_A", "mode_seeking_B")
        out["G"] = sum(out[k] for k in second if k in out)
        return out

    @torch.no_grad()
    def probe(self, images: torch.Tensor) -> torch.Tensor:
        """A -> B: G_B(E^c_A(x), z) in eval mode (no content noise), z the harness's probe codes."""
        m = self.model
        modes = {net: net.training for net in (m.enc_c, m.gen)}
        try:
            for net in modes:
                net.eval()
            z = pc.probe_attribute(self.case, m.nz).to(images.dtype)
            return m.gen.forward_b(m.enc_c.forward_a(images), z).detach().clone()
        finally:
            for net, training in modes.items():
                net.train(training)


if __name__ == "__main__":  # a module of the harness, not a script: running it did nothing, silently
    raise SystemExit(f"{__file__} is a module of the parity harness; run benchmarks/parity_vs_public.py (--help)")
