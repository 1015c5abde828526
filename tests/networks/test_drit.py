"""srunit.networks.drit: shapes and widths of the public layout, shared layers, the noise of the content
code, layer norm, the discriminator scales, the initialisation and the A -> B translator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srunit.networks.drit import (
    ContentDiscriminator,
    DRITAttributeEncoder,
    DRITContentEncoder,
    DRITGenerator,
    DRITTranslator,
    LayerNorm2d,
    MultiScaleDiscriminator,
)
from srunit.runtime.translation import attribute_from_seed


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_default_widths_are_the_public_concat_layout() -> None:
    """ngf 64, nz 8: a 256-channel content code; decoder stages at 256 + 8 = 264, then 272 -> 136,
    144 -> 72 and 80 -> 3 channels; attribute features of 256; discriminator widths 64..512."""
    shapes = {k: tuple(v.shape) for k, v in DRITGenerator().state_dict().items()}
    assert shapes["shared.0.conv_block.1.weight"] == (256, 256, 3, 3)
    assert shapes["domain_b.blocks.0.conv_block.1.weight"] == (264, 264, 3, 3)
    assert shapes["domain_b.ups.0.0.weight"] == (272, 136, 3, 3)  # transposed conv: (in, out, k, k)
    assert shapes["domain_b.ups.1.0.weight"] == (144, 72, 3, 3)
    assert shapes["domain_b.out.0.weight"] == (80, 3, 1, 1)
    assert sum(k.startswith("domain_a.blocks.") and k.endswith("1.weight") for k in shapes) == 3
    attr = DRITAttributeEncoder()
    assert attr.mu_a.weight.shape == (8, 256) and attr.logvar_b.weight.shape == (8, 256)
    widths = [m.out_channels for m in attr.features_a.modules() if isinstance(m, torch.nn.Conv2d)]
    # the first conv, then per block: path conv, path conv, shortcut conv (64 -> 128 -> 192 -> 256)
    assert widths == [64, 64, 128, 128, 128, 192, 192, 192, 256, 256]
    d = MultiScaleDiscriminator()
    assert [m.out_channels for m in d.scales[0] if isinstance(m, torch.nn.Conv2d)] == [64, 128, 256, 512, 1]
    assert len(d.scales) == 3
    assert DRITContentEncoder().channels == 256


@pytest.mark.parametrize(("h", "w"), [(32, 32), (32, 48), (20, 28)])
def test_shapes(h: int, w: int) -> None:
    torch.manual_seed(0)
    enc, attr, gen = DRITContentEncoder(ngf=4), DRITAttributeEncoder(ngf=4, nz=5), DRITGenerator(ngf=4, nz=5)
    x = _x(2, 3, h, w)
    c_a, c_b = enc(x, x)
    assert c_a.shape == c_b.shape == (2, 16, h // 4, w // 4)
    mu, logvar = attr.encode_b(x)
    assert mu.shape == logvar.shape == (2, 5)
    out = gen.decode_b(c_a, mu)
    assert out.shape == (2, 3, h, w) and out.abs().max() <= 1
    logits = MultiScaleDiscriminator(ndf=4, n_layers=2, n_scales=3)(x)
    assert [tuple(m.shape[2:]) for m in logits] == [(h // 4, w // 4), (h // 8, w // 8), (h // 16, w // 16)]


def test_content_discriminator_gives_one_logit_for_the_codes_of_216_px_crops() -> None:
    d = ContentDiscriminator(channels=8, n_layers=3)
    assert d(_x(2, 8, 54, 54)).shape == (2, 1, 1, 1)
    assert ContentDiscriminator(channels=8, n_layers=0)(_x(1, 8, 8, 8)).shape == (1, 1, 5, 5)


def test_shared_layers_serve_both_domains_and_noise_only_in_training() -> None:
    torch.manual_seed(0)
    enc = DRITContentEncoder(ngf=4).eval()
    xa, xb = _x(2, 3, 16, 16, seed=1), _x(2, 3, 16, 16, seed=2)
    c_a, c_b = enc(xa, xb)
    assert torch.allclose(c_a, enc.encode_a(xa), atol=1e-6) and torch.allclose(c_b, enc.encode_b(xb), atol=1e-6)
    assert torch.equal(enc.encode_a(xa), enc.encode_a(xa))  # eval: no noise
    enc.train()
    torch.manual_seed(3)
    noisy = enc.encode_a(xa)
    assert not torch.allclose(noisy, c_a, atol=1e-3)
    # The noise is N(0, I) added to the code: its residual has unit variance.
    assert (noisy - c_a).std().item() == pytest.approx(1.0, abs=0.1)
    # The shared blocks get a gradient from either domain's code.
    gen = DRITGenerator(ngf=4, nz=3)
    for decode in (gen.decode_a, gen.decode_b):
        gen.zero_grad()
        decode(c_a.detach(), torch.zeros(2, 3)).sum().backward()
        assert gen.shared[0].conv_block[1].weight.grad.abs().sum() > 0
    enc.zero_grad()
    enc.encode_b(xb).sum().backward()
    assert enc.shared[0].conv_block[1].weight.grad.abs().sum() > 0 and enc.domain_a[1].weight.grad is None


def test_layer_norm_normalises_each_image_over_channels_and_pixels() -> None:
    norm = LayerNorm2d(3)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, -1.0]).view(3, 1, 1))
        norm.bias.copy_(torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1))
    x = _x(2, 3, 4, 5)
    out = norm(x)
    for i in range(2):
        v = x[i]
        z = (v - v.mean()) / torch.sqrt(v.var(unbiased=False) + 1e-5)
        assert torch.allclose(out[i], z * norm.weight + norm.bias, atol=1e-5)


def test_each_scale_sees_the_previous_input_average_pooled() -> None:
    torch.manual_seed(0)
    d = MultiScaleDiscriminator(ndf=4, n_layers=2, n_scales=3)
    x = _x(1, 3, 32, 32)
    outs = d(x)
    pooled = x
    for scale, out in zip(d.scales, outs):
        assert torch.allclose(scale(pooled), out, atol=1e-6)
        pooled = F.avg_pool2d(pooled, 3, stride=2, padding=1, count_include_pad=False)


def test_initialisation_draws_conv_weights_from_n_0_002() -> None:
    torch.manual_seed(0)
    for net in (DRITContentEncoder(ngf=16), DRITGenerator(ngf=8), MultiScaleDiscriminator(ndf=16)):
        weights = torch.cat([m.weight.flatten() for m in net.modules()
                             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))])
        assert weights.numel() > 10_000
        assert weights.std().item() == pytest.approx(0.02, rel=0.05) and abs(weights.mean().item()) < 1e-3


def test_translator_uses_the_attribute_code() -> None:
    torch.manual_seed(0)
    enc, attr, gen = DRITContentEncoder(ngf=4), DRITAttributeEncoder(ngf=4, nz=8), DRITGenerator(ngf=4, nz=8)
    tr = DRITTranslator(enc, gen, attr).eval()
    x = _x(2, 3, 16, 24)
    seed0 = attribute_from_seed(0, 8)
    assert torch.equal(seed0, attribute_from_seed(0, 8)) and not torch.equal(seed0, attribute_from_seed(1, 8))
    with torch.no_grad():
        default = tr(x)
        assert torch.equal(default, tr(x, seed0))  # no code: the code of seed 0
        assert torch.allclose(default, gen.decode_b(enc.encode_a(x), seed0.expand(2, 8)), atol=1e-6)
        assert not torch.allclose(default, tr(x, attribute_from_seed(1, 8)), atol=1e-4)
        per_image = torch.stack([seed0, attribute_from_seed(1, 8)])
        assert torch.allclose(tr(x, per_image)[1], tr(x[1:], attribute_from_seed(1, 8))[0], atol=1e-6)
        ref = _x(1, 3, 16, 16, seed=5)
        assert torch.equal(tr.encode_attribute(ref), attr.encode_b(ref)[0])
    with pytest.raises(ValueError, match=r"attribute must have shape \(8,\) or \(2, 8\)"):
        tr(x, torch.zeros(3))
