"""srunit.networks.generator: shapes, the public layer layout, the encode/decode decomposition."""

from __future__ import annotations

import pytest
import torch

from srunit.networks import ResnetGenerator
from srunit.nn import BlurDownsample, BlurUpsample


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("n_blocks", [9, 6])
def test_generator_shapes(antialias: bool, n_blocks: int) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=n_blocks, antialias=antialias, antialias_up=antialias)
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    y, feats = g.forward_with_features(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    if antialias:  # conv before each blur-pool, then residual blocks 1 and 5
        expected = [(3, 38, 54), (8, 32, 48), (16, 16, 24), (16, 8, 12), (16, 8, 12)]
    else:  # the public positions shift by one layer per stage: block 3, then block 7 or the first up-conv
        expected = [(3, 38, 54), (8, 16, 24), (16, 8, 12), (16, 8, 12), (16, 8, 12) if n_blocks == 9 else (8, 16, 24)]
    assert [tuple(f.shape[1:]) for f in feats] == expected
    assert g.feature_channels == tuple(e[0] for e in expected)
    assert len(g.layers) == 23 + n_blocks + (0 if antialias else -4)  # the public layout's length


def test_default_generator_layout_matches_public_positions() -> None:
    g = ResnetGenerator()
    assert len(g.layers) == 32
    assert isinstance(g.layers[7], BlurDownsample) and isinstance(g.layers[11], BlurDownsample)
    assert isinstance(g.layers[21], BlurUpsample) and isinstance(g.layers[25], BlurUpsample)
    assert g.layers[4].out_channels == 128 and g.layers[8].out_channels == 256
    assert sum(p.numel() for p in g.parameters()) == 11_378_179


def test_encode_and_decode_compose_to_forward() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    y = g(x)
    feats = g.encode(x)
    for k in range(g.num_features):
        assert torch.allclose(g.decode_from(k, feats[k]), y, atol=1e-6)
        assert torch.equal(g.encode_layer(x, k), feats[k])
    assert len(g.encode(x, 2)) == 2


def test_feature_is_not_overwritten_by_inplace_relu() -> None:
    # With strided convs, position 8 is a norm whose successor is a ReLU.
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6, antialias=False, antialias_up=False)
    feats = g.encode(torch.rand(1, 3, 16, 16))
    assert (feats[2] < 0).any()


def test_generator_rejects_bad_feature_layers() -> None:
    with pytest.raises(ValueError, match="feature_layers"):
        ResnetGenerator(ngf=4, n_blocks=6, feature_layers=(0, 40))
    with pytest.raises(ValueError, match="increasing"):
        ResnetGenerator(ngf=4, n_blocks=6, feature_layers=(4, 0))
