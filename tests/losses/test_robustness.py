"""srunit.losses.robustness: the feature noise and L_k (Eq. 3) against a direct computation."""

from __future__ import annotations

import pytest
import torch

from srunit.losses import FeatureNoise, robustness_layer_loss
from srunit.losses.robustness import sample_feature_noise
from srunit.networks import PatchProjector, ResnetGenerator, sample_patch_ids


def test_feature_noise_distribution() -> None:
    torch.manual_seed(0)
    h = torch.zeros(4, 16, 8, 8)
    noise = sample_feature_noise(h, max_noise=0.1, min_noise=1e-7)
    assert torch.allclose(noise.direction.norm(dim=1), torch.ones(4, 8, 8), atol=1e-5)
    m = noise.magnitude
    assert m.shape == (4, 1, 8, 8) and m.min() >= 1e-7 and m.max() <= 0.1
    assert 0.04 < m.mean().item() < 0.06  # uniform on [1e-7, 0.1]
    # ||tau|| is the drawn magnitude at each position.
    assert torch.allclose(noise.tau.norm(dim=1, keepdim=True), m, rtol=1e-5)


def _eq3_directly(g: ResnetGenerator, f: PatchProjector, k: int, x: torch.Tensor, tau: torch.Tensor,
                  divide_by: torch.Tensor) -> torch.Tensor:
    """Eq. 3 at every position, (B, H, W), running the flat layer list by hand (no encode/decode API)."""
    pos = g.feature_layers[k]
    h = x
    for layer in g.layers[: pos + 1]:
        h = layer(h)
    y = h + tau
    for layer in g.layers[pos + 1 :]:
        y = layer(y)
    h2 = y
    for layer in g.layers[: pos + 1]:
        h2 = layer(h2)
    mlp = f.mlps[k]

    def proj(t: torch.Tensor) -> torch.Tensor:
        v = t.permute(0, 2, 3, 1)
        v = mlp[2](torch.relu(mlp[0](v)))
        return v / (v.norm(dim=-1, keepdim=True) + 1e-7)

    dist = (proj(h) - proj(h2)).norm(dim=-1)  # (B, H, W)
    return dist / divide_by[:, 0]


@pytest.mark.parametrize("k", [0, 2, 4])
@pytest.mark.parametrize("official", [False, True])
def test_robustness_loss_matches_eq3(k: int, official: bool) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    f = PatchProjector(g.feature_channels, dim=8)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    h = g.encode(x)[k]
    noise = sample_feature_noise(h, max_noise=0.1)
    hw = h.shape[2] * h.shape[3]
    got = robustness_layer_loss(g, f, k, h, num_patches=hw, max_noise=0.1, official_noise=official, noise=noise)
    tau_norm = noise.tau.norm(dim=1, keepdim=True)
    if official:  # the public code adds T * direction but divides by the drawn magnitude
        expected = _eq3_directly(g, f, k, x, noise.direction * 0.1, noise.magnitude).mean()
    else:
        expected = _eq3_directly(g, f, k, x, noise.tau, tau_norm).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-4)


def test_robustness_loss_on_sampled_positions_is_their_mean() -> None:
    torch.manual_seed(1)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    f = PatchProjector(g.feature_channels, dim=8)
    x = torch.rand(1, 3, 16, 16)
    h = g.encode(x)[3]  # 4x4 map: 16 positions
    noise = FeatureNoise(torch.nn.functional.normalize(torch.randn(h.shape), dim=1), torch.rand(1, 1, 4, 4) * 0.1 + 0.01)
    torch.manual_seed(5)
    part = robustness_layer_loss(g, f, 3, h, num_patches=5, noise=noise)
    torch.manual_seed(5)
    ids = sample_patch_ids(h, 5)  # the same draw as inside the loss
    per_position = _eq3_directly(g, f, 3, x, noise.tau, noise.magnitude).reshape(1, 16)
    assert part.item() == pytest.approx(per_position[0, ids[0]].mean().item(), rel=1e-4)


@pytest.mark.parametrize("detach", [False, True])
def test_robustness_gradient_reaches_g_and_f_or_only_g(detach: bool) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    f = PatchProjector(g.feature_channels, dim=8)
    h = g.encode(torch.rand(1, 3, 16, 16))[2]
    robustness_layer_loss(g, f, 2, h, num_patches=8, detach_projector=detach).backward()
    assert g.layers[1].weight.grad is not None and g.layers[1].weight.grad.abs().sum() > 0
    assert g.layers[-2].weight.grad.abs().sum() > 0  # reaches the decoder through G^{K+1}_k
    f_grads = [p.grad for p in f.mlps[2].parameters()]
    if detach:
        assert all(gr is None for gr in f_grads)
    else:
        assert all(gr is not None and gr.abs().sum() > 0 for gr in f_grads)
