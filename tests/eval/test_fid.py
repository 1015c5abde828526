"""srunit.eval.fid: closed-form Frechet distances and FID/KID folder scores with an injected tiny feature extractor."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("torchmetrics")

from srunit.errors import ConfigError
from srunit.eval.fid import FidKidScores, fid_kid, frechet_distance, load_inception


class TinyFeatures(torch.nn.Module):
    """Fixed random conv + global average pooling: uint8 (N,3,H,W) -> (N, 8)."""

    num_features = 8

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g))
            self.conv.bias.copy_(torch.randn(8, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(self.conv(x.float() / 255.0))
        return y.mean(dim=(2, 3))



def _save_torchscript(net: torch.nn.Module, path: Path) -> None:
    """The standard Inception weights are TorchScript, which torch deprecates: written here as such files are."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), str(path))

def _write_set(folder: Path, n: int, *, shift: int = 0, seed: int = 0, size=(16, 16)) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = rng.integers(0, 156, size=(*size, 3)) + shift
        Image.fromarray(arr.astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


# --- closed-form Frechet distance -------------------------------------------------------------


def test_frechet_identical_gaussians_is_zero():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 5))
    sigma = a @ a.T + np.eye(5)
    mu = rng.normal(size=5)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_frechet_diagonal_matches_closed_form():
    mu1 = np.array([0.0, 1.0, -2.0])
    mu2 = np.array([1.0, 3.0, 0.5])
    s1 = np.array([1.0, 4.0, 0.25])
    s2 = np.array([9.0, 1.0, 2.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_mean_shift_only():
    sigma = np.diag([2.0, 3.0])
    assert frechet_distance([0, 0], sigma, [3, 4], sigma) == pytest.approx(25.0, rel=1e-10)


def test_frechet_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# --- folder scores with an injected extractor -------------------------------------------------


def test_fid_kid_same_set_is_zero(tmp_path):
    real = _write_set(tmp_path / "real", 12)
    scores = fid_kid(real, real, feature=TinyFeatures(), kid_subsets=5, kid_subset_size=6, batch_size=5)
    assert isinstance(scores, FidKidScores)
    assert (scores.num_real, scores.num_fake) == (12, 12)
    assert scores.fid == pytest.approx(0.0, abs=1e-3)
    assert abs(scores.kid_mean) < 1e-3


def test_fid_kid_shifted_set_is_positive(tmp_path):
    real = _write_set(tmp_path / "real", 12, seed=0)
    fake = _write_set(tmp_path / "fake", 12, seed=1, shift=100)
    scores = fid_kid(real, fake, feature=TinyFeatures(), kid_subsets=5, kid_subset_size=6)
    assert scores.fid > 1e-2
    assert scores.kid_mean > 1e-3
    # fixed seed -> reproducible KID subsets
    again = fid_kid(real, fake, feature=TinyFeatures(), kid_subsets=5, kid_subset_size=6)
    assert again.kid_mean == pytest.approx(scores.kid_mean)


def test_kid_subset_size_clipped_with_warning(tmp_path, caplog):
    real = _write_set(tmp_path / "real", 8, seed=0)
    fake = _write_set(tmp_path / "fake", 5, seed=1, size=(12, 20))
    with caplog.at_level(logging.WARNING, logger="srunit.eval.fid"):
        scores = fid_kid(real, fake, feature=TinyFeatures(), kid_subsets=3, kid_subset_size=1000)
    assert "using 5" in caplog.text
    assert (scores.num_real, scores.num_fake) == (8, 5)
    assert np.isfinite([scores.fid, scores.kid_mean, scores.kid_std]).all()


def test_mixed_image_sizes_are_batched(tmp_path):
    real = _write_set(tmp_path / "real", 4, seed=0)
    _write_set(tmp_path / "real" / "big", 3, seed=2, size=(24, 10))
    scores = fid_kid(real, real, feature=TinyFeatures(), kid_subsets=2, kid_subset_size=4, batch_size=3)
    assert scores.num_real == 7
    assert scores.fid == pytest.approx(0.0, abs=1e-3)


# --- weights handling ------------------------------------------------------------------------


def test_missing_weights_file_names_path(tmp_path):
    missing = tmp_path / "nowhere" / "pt_inception-2015-12-05-6726825d.pth"
    with pytest.raises(ConfigError) as exc:
        load_inception(missing)
    msg = str(exc.value)
    assert str(missing) in msg
    assert "No download" in msg
    real = _write_set(tmp_path / "real", 3)
    with pytest.raises(ConfigError, match="nowhere"):
        fid_kid(real, real, weights=missing)


def test_weights_and_feature_are_exclusive(tmp_path):
    real = _write_set(tmp_path / "real", 3)
    with pytest.raises(ConfigError, match="exactly one"):
        fid_kid(real, real)
    with pytest.raises(ConfigError, match="exactly one"):
        fid_kid(real, real, weights=tmp_path / "w.pt", feature=TinyFeatures())


def test_torchscript_weights_file_is_used(tmp_path):
    """A TorchScript file with the Inception call signature loads and yields (N, D) features."""

    class FakeInception(torch.nn.Module):
        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            f = torch.stack([x.mean(dim=(1, 2, 3)), x.std(dim=(1, 2, 3))], dim=1) / 255.0
            f = f.repeat(1, 1024)  # Inception's 2048 pool features
            return f if return_features else f.sum(dim=1, keepdim=True)

    path = tmp_path / "inception-2015-12-05.pt"
    _save_torchscript(FakeInception(), path)
    net = load_inception(path)
    feats = net(torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8))
    assert feats.shape == (3, 2048)


def test_unloadable_weights_file(tmp_path):
    bad = tmp_path / "inception.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="TorchScript"):
        load_inception(bad)


class _TwoFeatures(torch.nn.Module):
    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return torch.stack([x.float().mean(dim=(1, 2, 3)), x.float().std(dim=(1, 2, 3))], dim=1)


class _ImagesOnly(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().mean(dim=(2, 3))


class _NanFeatures(torch.nn.Module):
    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return torch.full((x.shape[0], 2048), float("nan"))


@pytest.mark.parametrize(("net", "message"), [
    (_TwoFeatures(), r"is not an Inception-v3 FID network: it gives features of shape \(2, 2\) for 2 images, not "
                     r"\(2, 2048\)"),
    (_ImagesOnly(), r"is not an Inception-v3 FID network: calling it as one .* failed"),
    (_NanFeatures(), r"its features hold NaN or inf values"),
])
def test_a_weights_file_of_another_network_is_refused(tmp_path, net, message: str) -> None:
    path = tmp_path / "inception-2015-12-05.pt"
    _save_torchscript(net, path)
    with pytest.raises(ConfigError, match=message) as err:
        load_inception(path)
    assert str(path) in str(err.value) and "Traceback" not in str(err.value)
