"""srunit.losses.adversarial: the GAN objectives against their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from srunit.losses import GAN_MODES, discriminator_loss, generator_loss


def test_gan_losses_match_their_formulas() -> None:
    real = torch.tensor([[0.5, 2.0]])
    fake = torch.tensor([[-1.0, 0.25]])
    assert discriminator_loss("lsgan", real, fake).item() == pytest.approx(0.5 * ((0.25 + 1) / 2 + (1 + 0.0625) / 2))
    assert generator_loss("lsgan", fake).item() == pytest.approx((4 + 0.5625) / 2)

    def sig(v: float) -> float:
        return 1 / (1 + math.exp(-v))

    d_vanilla = 0.5 * (
        -(math.log(sig(0.5)) + math.log(sig(2.0))) / 2 - (math.log(1 - sig(-1)) + math.log(1 - sig(0.25))) / 2
    )
    assert discriminator_loss("vanilla", real, fake).item() == pytest.approx(d_vanilla, rel=1e-6)
    assert generator_loss("vanilla", fake).item() == pytest.approx(
        -(math.log(sig(-1)) + math.log(sig(0.25))) / 2, rel=1e-6
    )
    assert discriminator_loss("hinge", real, fake).item() == pytest.approx(0.5 * ((0.5 + 0) / 2 + (0 + 1.25) / 2))
    assert generator_loss("hinge", fake).item() == pytest.approx(0.375)
    with pytest.raises(ValueError, match="unknown GAN mode"):
        generator_loss("wgan", fake)  # type: ignore[arg-type]
    assert GAN_MODES == ("lsgan", "vanilla", "hinge")
