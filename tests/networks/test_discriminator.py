"""srunit.networks.discriminator: the PatchGAN's output size."""

from __future__ import annotations

import pytest
import torch

from srunit.networks import PatchDiscriminator


@pytest.mark.parametrize("antialias", [True, False])
def test_discriminator_output_size(antialias: bool) -> None:
    torch.manual_seed(0)
    d = PatchDiscriminator(ndf=4, antialias=antialias)
    assert d(torch.rand(1, 3, 256, 256)).shape == (1, 1, 30, 30)
