"""srunit.methods.cut: CUT / FastCUT options, the per-image flip and flip-equivariant PatchNCE."""

from __future__ import annotations

import pytest
import torch

from srunit.errors import ConfigError
from srunit.methods import CUT, CUTOptions, StepContext, build_method
from srunit.methods.cut import flip_where


def test_flip_where_mirrors_the_selected_images_and_is_its_own_inverse() -> None:
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).reshape(2, 1, 2, 3)
    flip = torch.tensor([True, False])
    out = flip_where(x, flip)
    assert out[0, 0].tolist() == [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]  # image 0 mirrored left-right
    assert torch.equal(out[1], x[1])
    assert torch.equal(flip_where(out, flip), x)
    assert flip_where(x, None) is x


def test_cut_options_are_checked() -> None:
    assert CUTOptions().name == "cut" and CUTOptions().num_patches == 256
    for kwargs, key in (
        ({"gan_mode": "wgan"}, "method.gan_mode"),
        ({"nce_negatives": "all"}, "method.nce_negatives"),
        ({"lambda_nce": -1.0}, "method.lambda_nce"),
        ({"nce_temperature": 0.0}, "method.nce_temperature"),
        ({"num_patches": 0}, "method.num_patches"),
    ):
        with pytest.raises(ConfigError, match=f"{key}: invalid value"):
            CUTOptions(**kwargs)


def test_build_method_takes_the_method_and_model_sections(tiny_config) -> None:
    config = tiny_config("cut")
    method = build_method(config.method, config.model)
    assert isinstance(method, CUT) and method.options is config.method and method.model_config is config.model
    assert set(method.networks()) == {"G", "D", "F"} and method.generator is method.G
    assert set(method.optimizer_groups()) == {"G", "D", "F"}


def test_fastcut_flip_equivariance_compares_matching_patches(tiny_config, random_batch) -> None:
    config = tiny_config("fastcut", "train.batch_size=2")
    torch.manual_seed(0)
    method = build_method(config.method, config.model)
    method.G.eval()
    batch = random_batch(batch_size=2)
    # Draw flips until both a flipped and an unflipped image occur in one batch (no failure either way).
    for seed in range(20):
        torch.manual_seed(seed)
        state = method.forward_step(batch, StepContext(0, 10, 0))
        if state.flip is not None and state.flip.any() and not state.flip.all():
            break
    assert state.flip is not None and state.idt_b is None
    flipped = state.flip
    # fake_b is G of the flipped input where flip is set; visuals undo it.
    with torch.no_grad():
        expect = method.G(torch.where(flipped[:, None, None, None], batch["A"].flip(3), batch["A"]))
    assert torch.allclose(state.fake_b, expect, atol=1e-6)
    loss, logs = method.generator_loss(state, StepContext(0, 10, 0))
    assert torch.isfinite(loss) and "NCE" in logs and "NCE_Y" not in logs
    # The sample images show G's output in the frame of the input again.
    visual = method.visuals(state)["fake_B"]
    assert torch.allclose(visual, torch.where(flipped[:, None, None, None], expect.flip(3), expect), atol=1e-6)


@pytest.mark.parametrize("preset", ["cut", "fastcut"])
def test_generator_loss_is_gan_plus_patchnce_recomputed(
    tiny_config, random_batch, reference_generator_loss, preset: str
) -> None:
    """CUT's whole G loss against its definition (lambda_GAN, lambda_NCE, the mean over layers, the
    identity average, query = translation and key = input at the same positions); a loss with
    query and key swapped, or without the identity average, does not match."""
    config = tiny_config(preset, "method.lambda_gan=0.7", "method.lambda_nce=1.3", "train.batch_size=2")
    torch.manual_seed(0)
    method = build_method(config.method, config.model)
    if preset == "fastcut":  # the reference has no flips: leave them out, keep lambda_NCE 10 and no identity
        method.options = type(method.options)(**{**vars(method.options), "flip_equivariance": False})
    torch.manual_seed(1)
    state = method.forward_step(random_batch(batch_size=2), StepContext(0, 10, 0))
    loss, logs = method.generator_loss(state, StepContext(0, 10, 0))
    expected = reference_generator_loss(method, state)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logs["G"].item() == pytest.approx(loss.item())
    assert ("NCE_Y" in logs) == method.options.nce_idt
    # The reference notices what a wrong loss would get wrong.
    swapped = type(method)(method.options, method.model_config)
    swapped.load_state_dict(method.state_dict())
    swapped.nce_loss = lambda fin, fout, src, flip: CUT.nce_loss(swapped, fout, fin, src, flip)  # query <-> key
    assert swapped.generator_loss(state, StepContext(0, 10, 0))[0].item() != pytest.approx(expected.item(), rel=1e-5)


def test_cut_discriminator_sees_the_pool_when_one_is_set(tiny_config, random_batch) -> None:
    """method.pool_size: with none (the presets) nothing is kept; with a full pool and forced swaps into
    slot 0, D sees the stored image for the first new one and the first new one for the second."""
    plain = build_method(*(lambda c: (c.method, c.model))(tiny_config("cut")))
    assert plain.extra_state() == {}
    config = tiny_config("cut", "method.pool_size=2")
    torch.manual_seed(0)
    method = build_method(config.method, config.model)
    ctx = StepContext(0, 10, 0)
    first = method.forward_step(random_batch(batch_size=2, seed=0), ctx)
    method.discriminator_loss(first, ctx)  # fills the pool with this step's translations
    assert torch.equal(method.pools["B"].images, first.fake_b.detach())
    method.pools["B"]._draw = lambda n, device: (torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.long))
    second = method.forward_step(random_batch(batch_size=2, seed=1), ctx)
    loss, _ = method.discriminator_loss(second, ctx)
    shown = torch.stack([first.fake_b[0], second.fake_b[0]]).detach()
    with torch.no_grad():
        expected = 0.5 * ((method.D(second.real_b) - 1).square().mean() + method.D(shown).square().mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.equal(method.pools["B"].images[0], second.fake_b[1].detach())  # the last swap into slot 0
    assert method.extra_state()["pools"]["B"]["count"] == 2
