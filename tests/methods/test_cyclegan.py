"""srunit.methods.cyclegan: the public code's network layout and init, the G and D losses recomputed
from their definitions, the phase order, and the options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srunit.config import load_config
from srunit.errors import ConfigError
from srunit.methods import CycleGAN, CycleGANOptions, StepContext, build_method

CTX = StepContext(0, 10, 0)


def _public_generator_layout(n_blocks: int) -> list[tuple[int, type]]:
    """(position, module type) of the public resnet generator with transposed convs: pad, conv, IN, ReLU;
    2 x (stride-2 conv, IN, ReLU); blocks; 2 x (transposed conv, IN, ReLU); pad, conv, tanh."""
    layout = [nn.ReflectionPad2d, nn.Conv2d, nn.InstanceNorm2d, nn.ReLU]
    layout += [nn.Conv2d, nn.InstanceNorm2d, nn.ReLU] * 2
    layout += ["block"] * n_blocks
    layout += [nn.ConvTranspose2d, nn.InstanceNorm2d, nn.ReLU] * 2
    layout += [nn.ReflectionPad2d, nn.Conv2d, nn.Tanh]
    return list(enumerate(layout))


def test_preset_networks_have_the_public_cyclegan_layout_and_keys(tiny_config) -> None:
    config = tiny_config("cyclegan", "model.n_blocks=9")
    method = build_method(config.method, config.model)
    assert set(method.networks()) == {"G", "G_BA", "D_B", "D_A"} and method.generator is method.G
    for g in (method.G, method.G_BA):
        layout = _public_generator_layout(9)
        assert len(g.layers) == len(layout) == 28
        for (position, kind), layer in zip(layout, g.layers):
            if kind == "block":
                assert type(layer).__name__ == "ResnetBlock", position
            else:
                assert isinstance(layer, kind), position  # our ReflectionPad2d subclasses torch's
        assert [g.layers[i].stride for i in (4, 7)] == [(2, 2), (2, 2)]
        assert [(g.layers[i].stride, g.layers[i].output_padding) for i in (19, 22)] == [((2, 2), (1, 1))] * 2
        assert not any(isinstance(m, nn.Dropout) for m in g.modules())
        assert all(not m.affine and not m.track_running_stats for m in g.modules() if isinstance(m, nn.InstanceNorm2d))
        # Its state dict keys are the public `model.N...` keys with `layers.N...`.
        public = {f"model.{i}.{p}" for i in (1, 4, 7, 19, 22, 26) for p in ("weight", "bias")}
        public |= {f"model.{i}.conv_block.{j}.{p}" for i in range(10, 19) for j in (1, 5) for p in ("weight", "bias")}
        assert set(g.state_dict()) == {k.replace("model.", "layers.", 1) for k in public}
    for d in (method.D_B, method.D_A):  # 70x70 PatchGAN: stride-2 convs at 0, 2, 5; stride 1 at 8, 11
        convs = {i: m for i, m in enumerate(d.layers) if isinstance(m, nn.Conv2d)}
        assert {i: m.stride for i, m in convs.items()} == {0: (2, 2), 2: (2, 2), 5: (2, 2), 8: (1, 1), 11: (1, 1)}
        assert len(d.layers) == 12 and set(d.state_dict()) == {
            f"layers.{i}.{p}" for i in convs for p in ("weight", "bias")
        }


def test_init_type_normal_draws_weights_with_std_gain(tiny_config) -> None:
    """CycleGAN's N(0, 0.02), against xavier-normal (gain 0.02), whose std depends on the fan."""
    torch.manual_seed(0)
    normal = build_method(*(lambda c: (c.method, c.model))(tiny_config("cyclegan", "model.ngf=16")))
    torch.manual_seed(0)
    xavier = build_method(
        *(lambda c: (c.method, c.model))(tiny_config("cyclegan", "model.ngf=16", "model.init_type=xavier"))
    )
    w = normal.G.layers[10].conv_block[1].weight  # (64, 64, 3, 3)
    assert w.std().item() == pytest.approx(0.02, rel=0.03) and abs(w.mean().item()) < 1e-3
    fan = 64 * 9
    assert xavier.G.layers[10].conv_block[1].weight.std().item() == pytest.approx(
        0.02 * (2 / (2 * fan)) ** 0.5, rel=0.03
    )
    assert all(
        float(m.bias.detach().abs().max()) == 0
        for m in normal.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    )
    with pytest.raises(ConfigError, match="model.init_type: invalid value 'kaiming'"):
        load_config("cyclegan", ["model.init_type=kaiming"])


def test_cyclegan_options_are_checked() -> None:
    o = CycleGANOptions()
    assert (o.lambda_a, o.lambda_b, o.lambda_identity, o.pool_size, o.gan_mode) == (10.0, 10.0, 0.5, 50, "lsgan")
    for kwargs, key in (
        ({"lambda_a": -1.0}, "method.lambda_a"),
        ({"lambda_identity": -0.5}, "method.lambda_identity"),
        ({"pool_size": -1}, "method.pool_size"),
        ({"gan_mode": "wgan"}, "method.gan_mode"),
    ):
        with pytest.raises(ConfigError, match=f"{key}: invalid value"):
            CycleGANOptions(**kwargs)
    with pytest.raises(ConfigError, match=r"method.pool_size 50 needs images of one size.*method.pool_size=0"):
        load_config("cyclegan", ["data.preprocess=scale_width"])
    assert load_config("cyclegan", ["data.preprocess=scale_width", "method.pool_size=0"]).method.pool_size == 0


def _mse(x: torch.Tensor, target: float) -> torch.Tensor:
    return ((x - target) ** 2).mean()


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference image by image, then over the images (all of one size)."""
    return torch.stack([(a[i] - b[i]).abs().mean() for i in range(a.shape[0])]).mean()


def _reference_losses(method: CycleGAN, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Total G and D loss from the definitions, one image and one network call at a time."""
    o = method.options
    g_total, d_total = torch.zeros(()), torch.zeros(())
    for i in range(x.shape[0]):
        xi, yi = x[i : i + 1], y[i : i + 1]
        fake_b, fake_a = method.G(xi), method.G_BA(yi)
        rec_a, rec_b = method.G_BA(fake_b), method.G(fake_a)
        g = _mse(method.D_B(fake_b), 1.0) + _mse(method.D_A(fake_a), 1.0)
        g = g + o.lambda_a * _l1(rec_a, xi) + o.lambda_b * _l1(rec_b, yi)
        # The identity of each generator, weighted with the cycle weight of its output domain.
        g = g + o.lambda_identity * (o.lambda_b * _l1(method.G(yi), yi) + o.lambda_a * _l1(method.G_BA(xi), xi))
        d = 0.5 * (_mse(method.D_B(yi), 1.0) + _mse(method.D_B(fake_b), 0.0))
        d = d + 0.5 * (_mse(method.D_A(xi), 1.0) + _mse(method.D_A(fake_a), 0.0))
        g_total, d_total = g_total + g, d_total + d
    # Every term is a mean over the batch's pixels (or D patches): the mean of the per-image values.
    return g_total / x.shape[0], d_total / x.shape[0]


@pytest.mark.parametrize("lambda_identity", [0.3, 0.0])
def test_generator_and_discriminator_losses_match_their_definitions(
    tiny_config, random_batch, lambda_identity: float
) -> None:
    config = tiny_config(
        "cyclegan", "method.lambda_a=7", "method.lambda_b=13", f"method.lambda_identity={lambda_identity}"
    )
    torch.manual_seed(0)
    method = build_method(config.method, config.model)
    batch = random_batch(batch_size=2)
    state = method.forward_step(batch, CTX)
    g_loss, g_logs = method.generator_loss(state, CTX)
    d_loss, d_logs = method.discriminator_loss(state, CTX)  # a pool that is not full returns the new images
    with torch.no_grad():
        g_ref, d_ref = _reference_losses(method, batch["A"], batch["B"])
    assert g_loss.item() == pytest.approx(g_ref.item(), rel=1e-5)
    assert d_loss.item() == pytest.approx(d_ref.item(), rel=1e-5)
    assert g_logs["G"].item() == pytest.approx(g_loss.item()) and d_logs["D"].item() == pytest.approx(d_loss.item())
    assert ("idt_A" in g_logs) == (state.idt_a is not None) == (state.idt_b is not None) == (lambda_identity > 0)
    # The reference notices a swapped identity weighting (lambda_a on G's identity instead of lambda_b).
    if lambda_identity > 0:
        swapped = CycleGANOptions(**{**vars(config.method), "lambda_a": 13.0, "lambda_b": 7.0})
        method.options = swapped
        assert method.generator_loss(state, CTX)[0].item() != pytest.approx(g_ref.item(), rel=1e-5)


def test_a_step_updates_the_generators_first_then_the_discriminators_through_the_pools(
    tiny_config, random_batch
) -> None:
    config = tiny_config("cyclegan", "method.pool_size=3")
    method = build_method(config.method, config.model)
    phases = method.phases(CTX)
    assert [(p.name, p.optimizers, p.frozen) for p in phases] == [
        ("G", ("G", "G_BA"), ("D_B", "D_A")),
        ("D", ("D_B", "D_A"), ()),
    ]
    assert set(method.optimizer_groups()) == {"G", "G_BA", "D_B", "D_A"}
    for step in range(2):
        state = method.forward_step(random_batch(batch_size=2, seed=step), CTX)
        method.discriminator_loss(state, CTX)
    assert method.pools["B"].count == method.pools["A"].count == 3
    saved = method.extra_state()
    assert set(saved["pools"]) == {"A", "B"} and saved["pools"]["B"]["images"].shape == (3, 3, 32, 32)
    assert set(method.visuals(state)) == {"real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"}
