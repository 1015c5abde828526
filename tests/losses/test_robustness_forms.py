"""srunit.losses.robustness, the ablated forms of App. G: E3 (no F_k), E4 (Eq. 4) and E5 (L_sc),
against per-position computations that run G's flat layer list by hand."""

from __future__ import annotations

import pytest
import torch

from srunit.losses import FeatureNoise, RobustnessTerms, robustness_ratios, semantic_distances
from srunit.networks import PatchProjector, ResnetGenerator


def _run(g: ResnetGenerator, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    for layer in g.layers[start:stop]:
        x = layer(x)
    return x


def _project(f: PatchProjector, k: int, t: torch.Tensor) -> torch.Tensor:
    """F_k at every position: (B, C, H, W) -> (B, H, W, D)."""
    v = t.permute(0, 2, 3, 1)
    mlp = f.mlps[k]
    v = mlp[2](torch.relu(mlp[0](v)))
    return v / (v.norm(dim=-1, keepdim=True) + 1e-7)


def _setup(k: int):  # noqa: ANN202 - networks, image, features of layer k and a fixed tau
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    f = PatchProjector(g.feature_channels, dim=8)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    position = g.feature_layers[k]
    h = _run(g, x, 0, position + 1)
    direction = torch.nn.functional.normalize(torch.randn(h.shape), dim=1)
    magnitude = torch.rand(2, 1, *h.shape[2:]) * 0.09 + 0.01
    return g, f, x, position, h, FeatureNoise(direction, magnitude)


@pytest.mark.parametrize("k", [0, 3])
def test_e3_compares_the_raw_features(k: int) -> None:
    g, f, x, position, h, noise = _setup(k)
    moved = _run(g, _run(g, h + noise.tau, position + 1, len(g.layers)), 0, position + 1)
    expected = ((h - moved).norm(dim=1) / noise.magnitude[:, 0]).mean()  # over channels, then / |tau|
    all_positions = h.shape[2] * h.shape[3]
    got = robustness_ratios(g, f, [k], [h], RobustnessTerms(num_patches=all_positions, project=False),
                            noises=[noise])[0]
    assert got.shape == (2, all_positions)
    assert got.mean().item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("k", [1, 4])
def test_e4_compares_with_the_semantics_of_the_translation(k: int) -> None:
    g, f, x, position, h, noise = _setup(k)
    translation = _run(g, x, 0, len(g.layers))  # G(x) in one pass from the image
    anchor = _project(f, k, _run(g, translation, 0, position + 1))  # F_k(G^k_1(G(x)))
    moved = _project(f, k, _run(g, _run(g, h + noise.tau, position + 1, len(g.layers)), 0, position + 1))
    expected = ((anchor - moved).norm(dim=-1) / noise.magnitude[:, 0]).mean()
    all_positions = h.shape[2] * h.shape[3]
    got = robustness_ratios(g, f, [k], [h], RobustnessTerms(num_patches=all_positions, anchor="translation"),
                            noises=[noise])[0].mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-4)
    eq3 = robustness_ratios(g, f, [k], [h], RobustnessTerms(num_patches=all_positions), noises=[noise])[0].mean()
    assert abs(eq3.item() - got.item()) > 1e-2 * got.item()  # Eq. 3 is another quantity
    # The gradient reaches G through both translations.
    (grad,) = torch.autograd.grad(got, g.layers[-2].weight)
    assert grad.abs().sum() > 0


def test_e5_is_the_distance_between_the_semantics_of_input_and_output() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    f = PatchProjector(g.feature_channels, dim=8)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    feats, out_feats = g.encode(x), g.encode(g(x))
    layers = [0, 2, 4]
    sizes = [t.shape[2] * t.shape[3] for t in feats]
    got = semantic_distances(f, layers, [feats[k] for k in layers], [out_feats[k] for k in layers],
                             RobustnessTerms(num_patches=max(sizes)))
    for k, per_position in zip(layers, got):
        h = _run(g, x, 0, g.feature_layers[k] + 1)
        h_out = _run(g, _run(g, x, 0, len(g.layers)), 0, g.feature_layers[k] + 1)
        expected = (_project(f, k, h) - _project(f, k, h_out)).norm(dim=-1).mean()
        assert per_position.shape == (2, sizes[k])
        assert per_position.mean().item() == pytest.approx(expected.item(), rel=1e-5)
