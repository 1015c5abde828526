"""A patch-based smoothness constraint in the style of HarmonicGAN (Zhang et al., ICLR 2019; SRUNIT App. G, E2).

    L_smooth = E_{x1, x2} | d(x1, x2) - d(G(x1), G(x2)) |

x1, x2 are patches of the same input image, G(x1) the patch of G(x) at the place of x1, and d
the distance between the colour histograms of two patches. App. G: 256 random patches per image
form 128 pairs. Our choices (App. G and HarmonicGAN leave them to the implementation):
- d is the L1 distance between the colour histograms, the histogram distance SRUNIT's Sec. 4.3
  names for this line of work ("the L1 distance between raw pixels or color histograms");
- the colour histogram of a patch is one soft histogram per RGB channel with ``bins`` bins
  spread evenly over [-1, 1] (centres -1, ..., 1), each pixel value shared between its two
  nearest bin centres in proportion to its closeness (a triangular kernel, so the histogram is
  differentiable in G(x) almost everywhere) and normalised to sum 1 per channel; the colour
  histogram is the 3 channel histograms side by side, so d lies in [0, 6];
- patches are square, ``size`` pixels wide, at uniformly random places (they may overlap), and
  pairs are consecutive draws (patch 2i with patch 2i + 1).
"""

from __future__ import annotations

import torch


def sample_patch_corners(images: torch.Tensor, num_patches: int, size: int) -> torch.Tensor:
    """Top-left corners of ``num_patches`` random size x size patches per image, on the images' device.

    images: (B, C, H, W) -> (B, N, 2) int64 rows and columns, uniform in [0, H - size] x [0, W - size].
    """
    b, _, h, w = images.shape
    if size > min(h, w):
        raise ValueError(f"patches of {size} px do not fit into {h}x{w} images")
    rows = torch.randint(0, h - size + 1, (b, num_patches), device=images.device)
    cols = torch.randint(0, w - size + 1, (b, num_patches), device=images.device)
    return torch.stack([rows, cols], dim=-1)


def extract_patches(images: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """The patches at ``corners``: images (B, C, H, W), corners (B, N, 2) -> (B, N, C, size, size)."""
    b = images.shape[0]
    offsets = torch.arange(size, device=images.device)
    rows = corners[..., 0, None] + offsets  # (B, N, size)
    cols = corners[..., 1, None] + offsets
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    # (B, N, size, size, C): advanced indexing over the batch, rows and columns of channels-last images
    patches = images.permute(0, 2, 3, 1)[batch, rows[..., :, None], cols[..., None, :]]
    return patches.permute(0, 1, 4, 2, 3)


def soft_histogram(patches: torch.Tensor, bins: int) -> torch.Tensor:
    """Per-channel soft histograms with a triangular kernel: (B, N, C, S, S) in [-1, 1] -> (B, N, C, bins) float32.

    Bin j is centred at -1 + 2j / (bins - 1); a value v adds max(0, 1 - |v - centre| / spacing) to
    each bin, which splits it between its two nearest centres; each channel's histogram sums to 1.
    """
    spacing = 2.0 / (bins - 1)
    centres = torch.linspace(-1.0, 1.0, bins, device=patches.device)
    values = patches.float().clamp(-1.0, 1.0).flatten(3)  # (B, N, C, S*S)
    weights = (1 - (values[..., None] - centres).abs() / spacing).clamp_min(0)  # (B, N, C, S*S, bins)
    return weights.mean(3)


def histogram_distances(histograms: torch.Tensor) -> torch.Tensor:
    """d of consecutive pairs: the L1 distance between colour histograms 2i and 2i + 1.

    histograms: (B, N, C, bins), N even -> (B, N / 2).
    """
    first, second = histograms[:, 0::2], histograms[:, 1::2]
    return (first - second).abs().flatten(2).sum(2)


def smoothness_loss(source: torch.Tensor, translated: torch.Tensor, corners: torch.Tensor, size: int,
                    bins: int) -> torch.Tensor:
    """L_smooth, averaged over the pairs and the batch.

    source x and translated G(x): (B, 3, H, W) in [-1, 1], in the same frame; corners (B, N, 2)
    from `sample_patch_corners` (N even), the same places in both.
    """
    d_source = histogram_distances(soft_histogram(extract_patches(source, corners, size), bins))
    d_translated = histogram_distances(soft_histogram(extract_patches(translated, corners, size), bins))
    return (d_source - d_translated).abs().mean()
