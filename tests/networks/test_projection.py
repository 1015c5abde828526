"""srunit.networks.projection: the patch feature head F and patch sampling."""

from __future__ import annotations

import torch

from srunit.networks import PatchProjector, gather_patches, sample_patch_ids


def test_projector_builds_all_parameters_and_normalises() -> None:
    torch.manual_seed(0)  # the initialisation and the features are random: same draw in any test order
    f = PatchProjector([3, 8, 16], dim=8)
    assert len(list(f.parameters())) == 3 * 4  # two Linear layers (weight, bias) per feature layer
    feat = torch.randn(2, 8, 5, 5)
    ids = sample_patch_ids(feat, 7)
    out = f(1, feat, ids)
    assert out.shape == (2, 7, 8)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2, 7), atol=1e-3)  # CUT's +1e-7 on tiny init outputs


def test_patch_ids_are_distinct_per_image_and_gathered_correctly() -> None:
    torch.manual_seed(0)
    feat = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    ids = sample_patch_ids(feat, 16)
    assert ids.shape == (2, 16)
    for row in ids:
        assert sorted(row.tolist()) == list(range(16))
    patches = gather_patches(feat, ids)
    b, p = 1, 5
    pos = ids[b, p].item()
    assert torch.equal(patches[b, p], feat[b, :, pos // 4, pos % 4])
    assert sample_patch_ids(feat, 100).shape == (2, 16)  # capped at H*W
