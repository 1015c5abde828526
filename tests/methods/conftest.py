"""Fixtures of the method tests: an independent recomputation of a method's whole generator loss."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

import srunit.losses.robustness as robustness_module
import srunit.methods.cut as cut_module
from srunit.losses import FeatureNoise


def _fixed_ids(feat: torch.Tensor, num_patches: int) -> torch.Tensor:
    """Every 3rd position (wrapping), the same for every image: (B, P)."""
    b, _, h, w = feat.shape
    p = min(num_patches, h * w)
    return ((torch.arange(p) * 3) % (h * w)).expand(b, p).contiguous()


def _fixed_noise(h: torch.Tensor, max_noise: float, min_noise: float = 1e-7) -> FeatureNoise:
    g = torch.Generator().manual_seed(h.shape[1] * 1000 + h.shape[2])
    direction = F.normalize(torch.randn(h.shape, generator=g), dim=1)
    magnitude = min_noise + (max_noise - min_noise) * torch.rand(h.shape[0], 1, *h.shape[2:], generator=g)
    return FeatureNoise(direction, magnitude)


@pytest.fixture
def fixed_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch positions and tau_k as fixed functions of the feature shapes, for the methods and Eq. 3."""
    monkeypatch.setattr(cut_module, "sample_patch_ids", _fixed_ids)
    monkeypatch.setattr(robustness_module, "sample_patch_ids", _fixed_ids)
    monkeypatch.setattr(robustness_module, "sample_feature_noise", _fixed_noise)


def _features(g: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """G^k_1(x) for every feature layer, running G's flat layer list by hand."""
    feats = []
    for i, layer in enumerate(g.layers[: g.feature_layers[-1] + 1]):
        x = layer(x)
        if i in g.feature_layers:
            feats.append(x)
    return feats


def _rest(g: torch.nn.Module, position: int, h: torch.Tensor) -> torch.Tensor:
    for layer in g.layers[position + 1:]:
        h = layer(h)
    return h


def _project(f: torch.nn.Module, k: int, feat: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """F_k at the positions: Linear - ReLU - Linear, then v / (||v|| + 1e-7), or (v + 1e-12) / ||v + 1e-12||
    for the public SRUNIT code's normalisation (model.projector_norm shifted); (B, P, D)."""
    v = feat.flatten(2).transpose(1, 2)  # (B, HW, C)
    v = torch.stack([v[i, ids[i]] for i in range(v.shape[0])])
    mlp = f.mlps[k]
    v = mlp[2](torch.relu(mlp[0](v)))
    if f.normalization == "shifted":
        v = v + 1e-12
        return v / v.norm(dim=-1, keepdim=True)
    return v / (v.norm(dim=-1, keepdim=True) + 1e-7)


def _patch_nce(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 2 per image: position i's query against its own key (positive) and the image's other keys."""
    losses = []
    for q, k in zip(query, key):
        logits = q @ k.T / temperature  # row i: v_i . v+_j
        losses.append(torch.logsumexp(logits, dim=1) - logits.diagonal())
    return torch.cat(losses).mean()


@pytest.fixture
def reference_generator_loss(fixed_draws) -> Callable[..., torch.Tensor]:
    """``(method, state) -> total G loss`` of CUT / SRUNIT recomputed from their definitions:
    lambda_GAN * LSGAN(D(G(x))) + lambda_NCE * [mean over layers of PatchNCE(query = F(G^k_1(G(x))),
    key = F(G^k_1(x))), averaged with the same for y and G(y) when nce_idt] + beta * mean over the
    robustness layers of Eq. 3 (when the method has one and it is on), or of the form of App. G that
    ``robust.form`` names: E3 (no F_k), E4 (Eq. 4), E5 (L_sc). Uses the fixed draws."""

    def total(method, state, robust: bool = False) -> torch.Tensor:  # noqa: ANN001 - a CUT-family method
        o, g, f = method.options, method.G, method.F
        n = state.real_a.shape[0]
        gan = o.lambda_gan * (method.D(state.fake_b) - 1).square().mean()

        def nce(source: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
            keys, queries = _features(g, source), _features(g, output)
            per_layer = []
            for k, (key, query) in enumerate(zip(keys, queries)):
                ids = _fixed_ids(key, o.num_patches)
                per_layer.append(_patch_nce(_project(f, k, query, ids), _project(f, k, key, ids).detach(),
                                            o.nce_temperature))
            return o.lambda_nce * torch.stack(per_layer).mean()

        loss_nce = nce(state.real_a, state.fake_b)
        if o.nce_idt:
            loss_nce = 0.5 * (loss_nce + nce(state.real_b, state.idt_b))
        out = gan + loss_nce
        if robust:
            r = o.terms["robust"]
            feats = _features(g, state.real_a[:n])
            # G(x) by the whole layer list, then its features: the anchors of Eq. 4 and the outputs of L_sc.
            translated = _features(g, _rest(g, -1, state.real_a[:n]))
            terms = []
            for k in r.layers:
                h, position = feats[k], g.feature_layers[k]
                ids = _fixed_ids(h, o.num_patches)
                if r.form == "semantic-consistency":
                    distance = (_project(f, k, h, ids) - _project(f, k, translated[k], ids)).norm(dim=-1)
                    terms.append(distance.mean())
                    continue
                noise = _fixed_noise(h, r.max_noise, r.min_noise)
                moved = _features(g, _rest(g, position, h + noise.tau))[k]
                if r.form == "no-projector":  # raw feature vectors at the positions
                    def at(t: torch.Tensor) -> torch.Tensor:
                        return torch.stack([t[i].flatten(1)[:, ids[i]].T for i in range(n)])  # noqa: B023

                    distance = (at(h) - at(moved)).norm(dim=-1)
                else:
                    anchor = translated[k] if r.form == "eq4" else h
                    distance = (_project(f, k, anchor, ids) - _project(f, k, moved, ids)).norm(dim=-1)
                magnitude = torch.stack([noise.magnitude[i].flatten()[ids[i]] for i in range(n)])
                terms.append((distance / magnitude).mean())
            out = out + r.weight * torch.stack(terms).mean()
        return out

    return total
