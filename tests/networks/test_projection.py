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


def test_shifted_normalisation_is_the_public_srunit_codes() -> None:
    """``normalization="shifted"`` divides x + 1e-12 by its L2 norm (the public SRUNIT code's Normalize);
    the default divides x by ||x|| + 1e-7 (the public CUT code's). Checked on the MLP's raw output,
    computed here with the head's own layers, against both formulas written out."""
    torch.manual_seed(0)
    cut = PatchProjector([4], dim=6)
    shifted = PatchProjector([4], dim=6, normalization="shifted")
    shifted.load_state_dict(cut.state_dict())
    feat = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    cut, shifted = cut.double(), shifted.double()
    ids = torch.tensor([[0, 4, 8]])
    raw = cut.mlps[0](gather_patches(feat, ids))  # (1, 3, 6): tiny at this init (norms about 1e-3)
    norm = raw.square().sum(-1, keepdim=True).sqrt()
    assert torch.allclose(cut(0, feat, ids), raw / (norm + 1e-7), rtol=1e-13, atol=0)
    moved = raw + 1e-12
    assert torch.allclose(
        shifted(0, feat, ids), moved / moved.square().sum(-1, keepdim=True).sqrt(), rtol=1e-13, atol=0
    )
    # The two differ by about 1e-7 / ||x|| relatively: measurable at initialisation, where ||x|| is small.
    assert (cut(0, feat, ids) - shifted(0, feat, ids)).abs().max() > 1e-6
    assert shifted.config["normalization"] == "shifted" and "normalization" not in cut.config
