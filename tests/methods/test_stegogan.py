"""srunit.methods.stegogan and srunit.networks.stegogan: the public code's layout and hiding point, the G and D
losses recomputed from their definitions one image at a time, and each difference between the public code and
the paper preset (double G step, noise on the images' device, the feature consistency that is never added)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import srunit.methods.stegogan as stegogan_module
from srunit.config import load_config
from srunit.engine import Schedule, StepRunner
from srunit.errors import ConfigError
from srunit.methods import StegoGAN, StegoGANOptions, StepContext, build_method
from srunit.networks.stegogan import StegoGenerator, StegoMaskGenerator

CTX = StepContext(0, 10, 0)


class FixedNoise:
    """Stands in for the method module's ``torch``: ``randn`` returns a fixed N(0, 1) draw and records the call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    def randn(self, shape: Any, *, device: Any = None, dtype: Any = None) -> torch.Tensor:
        self.calls.append({"shape": tuple(shape), "device": device, "dtype": dtype})
        return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(5)).to(device=device, dtype=dtype)


@pytest.fixture
def fixed_noise(monkeypatch: pytest.MonkeyPatch) -> FixedNoise:
    noise = FixedNoise()
    monkeypatch.setattr(stegogan_module, "torch", noise)
    return noise


def _method(tiny_config, *overrides: str, seed: int = 0) -> StegoGAN:
    config = tiny_config("stegogan", *overrides)
    torch.manual_seed(seed)
    return build_method(config.method, config.model)


# ----------------------------------------------------------------------------- an independent reference


def _blocks_seen(layers: nn.ModuleList, upto: int) -> int:
    return sum(type(layer).__name__ == "ResnetBlock" for layer in layers[:upto])


def _public_hiding_index(layers: nn.ModuleList, resnet_layer: int) -> int:
    """The layer before which the public generators hide and add features: --resnet_layer r means after residual
    block r + 1 (0-based r), and r = -1 before the first block."""
    blocks = [i for i, layer in enumerate(layers) if type(layer).__name__ == "ResnetBlock"]
    return blocks[0] if resnet_layer == -1 else blocks[resnet_layer] + 1


def _reference_g(g: StegoGenerator, resnet_layer: int, x: torch.Tensor, hidden: torch.Tensor | None) -> torch.Tensor:
    """G as the public ResnetMaskV1Generator computes it: the hidden features (through the fusion block, when
    there is one) are added at the hiding point."""
    at = _public_hiding_index(g.layers, resnet_layer)
    for i, layer in enumerate(g.layers):
        if i == at and hidden is not None:
            x = x + (g.fusion(hidden) if g.fusion is not None else hidden)
        x = layer(x)
    return x


def _reference_mask_net(net: nn.Module, h: torch.Tensor) -> torch.Tensor:
    x = F.relu(F.instance_norm(F.conv2d(h, net.conv1.weight, net.conv1.bias, padding=1), eps=1e-5))
    x = F.relu(F.instance_norm(F.conv2d(x, net.conv2.weight, net.conv2.bias, padding=1), eps=1e-5))
    return torch.sigmoid(F.conv2d(x, net.conv3.weight, net.conv3.bias, padding=1))


def _reference_g_ba(g: StegoMaskGenerator, resnet_layer: int, y: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image, hidden features, mask) as the public ResnetMaskV3Generator and mask_generate compute them."""
    at = _public_hiding_index(g.layers, resnet_layer)
    hidden = mask = None
    for i, layer in enumerate(g.layers):
        if i == at:
            m = _reference_mask_net(g.mask, y)  # (1, G, h, w)
            channels = y.shape[1]
            m = m[:, torch.arange(channels) // (channels // m.shape[1])]  # group g covers channels g*C/G ...
            hidden, mask = y * (1 - m), (1 - m).max(dim=1, keepdim=True)[0]
            y = y * m
        y = layer(y)
    assert mask is not None and hidden is not None
    return y, hidden, mask


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean()


def _mse(x: torch.Tensor, target: float) -> torch.Tensor:
    return ((x - target) ** 2).mean()


def _reference_losses(method: StegoGAN, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor
                      ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every G loss term and the D loss, one image and one network call at a time, as the public
    stego_gan_model computes them (its names in comments: G_A is our G, G_B our G_BA, D_A our D_B)."""
    o, r = method.options, method.model_config.n_blocks - 1 - method.options.blocks_after_mask
    up = lambda m: F.interpolate(m, scale_factor=4, mode="bilinear", align_corners=True)  # noqa: E731
    terms: dict[str, list[torch.Tensor]] = {}
    d_total = torch.zeros(())
    for i in range(x.shape[0]):
        xi, yi = x[i : i + 1], y[i : i + 1]
        fake_a, latent_b, mask_b = _reference_g_ba(method.G_BA, r, yi)
        rec_b = _reference_g(method.G, r, fake_a + o.cycle_noise * noise[i : i + 1], latent_b)
        rec_b_clean = _reference_g(method.G, r, fake_a, None)
        fake_b_clean = _reference_g(method.G, r, xi, None)
        fake_b = _reference_g(method.G, r, xi, latent_b.detach())
        rec_a, latent_fake_b, mask_fake_b = _reference_g_ba(method.G_BA, r, fake_b)
        keep_b, keep_fb = 1 - up(mask_b), 1 - up(mask_fake_b)
        each = {
            "G_GAN_B": _mse(method.D_B(fake_b), 1.0), "G_GAN_A": _mse(method.D_A(fake_a), 1.0),
            "cycle_A": o.lambda_a * _l1(rec_a, xi), "cycle_B": o.lambda_b * _l1(rec_b, yi),
            "idt_B": o.lambda_identity * o.lambda_b * _l1(_reference_g(method.G, r, yi, None), yi),
            "idt_A": o.lambda_identity * o.lambda_a * _l1(_reference_g_ba(method.G_BA, r, xi)[0], xi),
            "consistency_B": o.lambda_consistency * (_l1(rec_b_clean * keep_b, yi * keep_b)
                                                     + _l1(fake_b_clean * keep_fb, fake_b * keep_fb)),
            "mask_reg": o.lambda_reg * (torch.sqrt(mask_b + 1e-10).mean() + torch.sqrt(mask_fake_b + 1e-10).mean()),
            "feature": _l1(latent_fake_b, latent_b),
        }
        for k, v in each.items():
            terms.setdefault(k, []).append(v)
        d = 0.5 * (_mse(method.D_B(yi), 1.0) + _mse(method.D_B(fake_b), 0.0))
        d = d + 0.5 * (_mse(method.D_A(xi), 1.0) + _mse(method.D_A(fake_a), 0.0))
        d_total = d_total + d
    # Every term is a mean over the batch's pixels (or patches): the mean of the per-image values.
    return {k: torch.stack(v).mean() for k, v in terms.items()}, d_total / x.shape[0]


@pytest.mark.parametrize("overrides", [
    (),  # the preset: hiding after the last block, fusion on, one mask per channel
    ("method.blocks_after_mask=4", "method.fusion=false", "method.mask_groups=4", "method.lambda_identity=0.3"),
    ("method.blocks_after_mask=6", "method.mask_groups=1"),  # before the first block (public --resnet_layer -1)
])
def test_generator_and_discriminator_losses_match_their_definitions(tiny_config, random_batch, fixed_noise,
                                                                    overrides: tuple[str, ...]) -> None:
    method = _method(tiny_config, "method.lambda_a=7", "method.lambda_b=13", "method.lambda_consistency=2.5",
                     "method.lambda_reg=0.4", "method.cycle_noise=0.5", *overrides)
    batch = random_batch(batch_size=2)
    state = method.forward_step(batch, CTX)
    g_loss, logs = method.generator_loss(state, CTX)
    d_loss, d_logs = method.discriminator_loss(state, CTX)  # a pool that is not full returns the new images
    assert fixed_noise.calls == [{"shape": (2, 3, 32, 32), "device": torch.device("cpu"), "dtype": torch.float32}]
    noise = FixedNoise().randn((2, 3, 32, 32), device="cpu", dtype=torch.float32)
    with torch.no_grad():
        ref, d_ref = _reference_losses(method, batch["A"], batch["B"], noise)
    for key in ("G_GAN_B", "G_GAN_A", "cycle_A", "cycle_B", "idt_B", "idt_A", "consistency_B", "mask_reg"):
        assert logs[key].item() == pytest.approx(ref[key].item(), rel=1e-5), key
    expected = sum(v for k, v in ref.items() if k != "feature")
    assert g_loss.item() == pytest.approx(float(expected), rel=1e-5)
    assert logs["G"].item() == pytest.approx(g_loss.item())
    assert d_loss.item() == pytest.approx(d_ref.item(), rel=1e-5) and d_logs["D"].item() == pytest.approx(d_loss.item())
    # The feature consistency the public code computes is not part of the loss, unless asked for.
    assert "consistency_feature" not in logs
    method.options = StegoGANOptions(**{**vars(method.options), "lambda_feature": 0.7})
    with_feature, logs = method.generator_loss(state, CTX)
    assert logs["consistency_feature"].item() == pytest.approx(0.7 * ref["feature"].item(), rel=1e-5)
    assert with_feature.item() == pytest.approx(g_loss.item() + 0.7 * ref["feature"].item(), rel=1e-5)


def test_the_reference_notices_a_wrong_hiding_point(tiny_config, random_batch, fixed_noise) -> None:
    """The reference is not the code's own formula: a hiding point one block off gives other losses."""
    method = _method(tiny_config, "method.blocks_after_mask=2", "method.cycle_noise=0")
    batch = random_batch(batch_size=1)
    _, logs = method.generator_loss(method.forward_step(batch, CTX), CTX)
    method.options = StegoGANOptions(**{**vars(method.options), "blocks_after_mask": 3})
    with torch.no_grad():
        ref, _ = _reference_losses(method, batch["A"], batch["B"], torch.zeros(1, 3, 32, 32))
    assert logs["cycle_B"].item() != pytest.approx(ref["cycle_B"].item(), rel=1e-5)


# ----------------------------------------------------------------------------- networks


def test_networks_have_the_public_layout_keys_and_hiding_point(tiny_config) -> None:
    method = _method(tiny_config, "model.n_blocks=9", "method.blocks_after_mask=5")  # public --resnet_layer 3
    assert set(method.networks()) == {"G", "G_BA", "D_B", "D_A"} and method.generator is method.G
    for g in (method.G, method.G_BA):
        # CycleGAN's layout: pad, conv, IN, ReLU, 2 x (stride-2 conv, IN, ReLU), 9 blocks, 2 x (transposed conv,
        # IN, ReLU), pad, conv, tanh; the hiding point after the 4th block (layer 13), as --resnet_layer 3 puts it.
        assert len(g.layers) == 28 and [type(g.layers[i]).__name__ for i in (10, 18, 19)] == [
            "ResnetBlock", "ResnetBlock", "ConvTranspose2d"]
        assert g.hiding_position == 14 and _blocks_seen(g.layers, g.hiding_position) == 4
        assert all(not m.affine for m in g.modules() if isinstance(m, nn.InstanceNorm2d))
    assert {k for k in method.G.state_dict() if not k.startswith("layers.")} == {
        f"fusion.conv_block.{i}.{p}" for i in (1, 5) for p in ("weight", "bias")}
    assert {k for k in method.G_BA.state_dict() if not k.startswith("layers.")} == {
        f"mask.conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")}
    assert method.G_BA.mask.conv3.out_channels == 16  # one mask per trunk channel (4 ngf)
    # Every conv, the mask network's too, is drawn N(0, 0.02) with zero bias (the public init_net overwrites the
    # mask network's own kaiming init).
    w = _method(tiny_config, "model.ngf=16").G_BA.mask.conv2.weight
    assert w.std().item() == pytest.approx(0.02, rel=0.05)
    assert all(float(m.bias.detach().abs().max()) == 0 for m in method.modules() if isinstance(m, nn.Conv2d))


def test_mask_generator_outputs_agree(tiny_config, random_batch) -> None:
    g = _method(tiny_config, "method.mask_groups=4").G_BA
    y = random_batch(batch_size=2)["B"]
    with torch.no_grad():
        split = g.split(y)
        assert torch.allclose(g(y), split.image, atol=1e-6)
        mask = g.unmatched_mask(y)
    assert split.hidden.shape == (2, 16, 8, 8) and split.mask.shape == (2, 1, 8, 8)
    assert mask.shape == (2, 1, 32, 32) and 0 <= float(mask.min()) and float(mask.max()) <= 1
    assert torch.allclose(mask, F.interpolate(split.mask, scale_factor=4, mode="bilinear", align_corners=True))


def test_options_are_checked(tiny_config) -> None:
    o = StegoGANOptions()
    assert (o.lambda_consistency, o.lambda_reg, o.lambda_feature, o.blocks_after_mask, o.fusion, o.cycle_noise,
            o.generator_steps) == (1.0, 0.3, 0.0, 0, True, 0.01, 1)
    assert load_config("stegogan-official").method.generator_steps == 2
    for kwargs, key in (({"lambda_reg": -1.0}, "method.lambda_reg"), ({"cycle_noise": -0.1}, "method.cycle_noise"),
                        ({"generator_steps": 0}, "method.generator_steps"), ({"mask_groups": -2}, "method.mask_groups"),
                        ({"gan_mode": "wgan"}, "method.gan_mode")):
        with pytest.raises(ConfigError, match=f"{key}: invalid value"):
            StegoGANOptions(**kwargs)
    with pytest.raises(ConfigError, match=r"method.blocks_after_mask: invalid value 7; allowed: an integer from 0 to "
                                          r"model.n_blocks \(6\)"):
        _method(tiny_config, "method.blocks_after_mask=7")
    with pytest.raises(ConfigError, match=r"method.mask_groups: invalid value 3; allowed: .*divisor of the 16 trunk"):
        _method(tiny_config, "method.mask_groups=3")
    with pytest.raises(ConfigError, match=r"method.pool_size 50 needs images of one size"):
        load_config("stegogan", ["data.preprocess=scale_width"])


# ----------------------------------------------------------------------------- the public code's departures


def test_official_preset_steps_g_twice_on_the_same_gradients(tiny_config, random_batch) -> None:
    """stegogan-official: optimize_parameters calls optimizer_G.step() twice; the paper preset once. The second
    step is a second Adam step on the same gradients: the same as stepping the paper preset's optimizers again."""
    def runner(preset: str) -> StepRunner:
        torch.manual_seed(0)
        return StepRunner(tiny_config(preset), torch.device("cpu"), Schedule.constant(10))

    official, paper = runner("stegogan-official"), runner("stegogan")
    assert [p.steps for p in official.method.phases(CTX)] == [2, 1]
    assert [p.steps for p in paper.method.phases(CTX)] == [1, 1]
    batch = random_batch(batch_size=1)
    torch.manual_seed(3)
    official.train_step(batch)
    torch.manual_seed(3)
    paper.train_step(batch)
    for name in ("G", "G_BA"):
        paper.optimizers[name].step()  # the phase left its gradients in place
    for name, net in official.method.networks().items():
        other = paper.method.networks()[name].state_dict()
        assert all(torch.equal(v, other[k]) for k, v in net.state_dict().items()), name
    steps = {n: int(next(iter(o.state.values()))["step"]) for n, o in official.optimizers.items()}
    assert steps == {"G": 2, "G_BA": 2, "D_B": 1, "D_A": 1}


def test_noise_is_drawn_on_the_images_device_and_dtype(tiny_config, random_batch, fixed_noise) -> None:
    """The public code draws its noise on the CPU and moves it with .cuda(), so it runs on a GPU only: here it is
    drawn where the images are, in their dtype, once per step (bf16 under autocast)."""
    method = _method(tiny_config)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        method.forward_step(random_batch(batch_size=2), CTX)
    assert fixed_noise.calls == [{"shape": (2, 3, 32, 32), "device": torch.device("cpu"), "dtype": torch.bfloat16}]


@pytest.mark.slow  # fp16 on the CPU, a dozen steps until the scaler stops skipping
def test_repeated_steps_with_the_fp16_loss_scaler(tiny_config, random_batch) -> None:
    """In fp16 the gradients are unscaled once and stepped on twice; the scaler is still stepped once per update."""
    torch.manual_seed(0)
    runner = StepRunner(tiny_config("stegogan-official", "train.precision=fp16"), torch.device("cpu"),
                        Schedule.constant(10))
    if not runner.scaler.is_enabled():
        pytest.skip("this torch has no CPU GradScaler")
    reference = copy.deepcopy(runner.method.G.state_dict())
    # The scaler starts at 2^16 and skips the first updates, whose fp16 gradients overflow: both steps of a
    # skipped update are skipped.
    for seed in range(12):
        runner.train_step(random_batch(batch_size=1, seed=seed))
        state = runner.optimizers["G"].state
        if state:
            break
    steps = int(next(iter(state.values()))["step"])
    assert steps > 0 and steps % 2 == 0
    assert any(not torch.equal(v, runner.method.G.state_dict()[k]) for k, v in reference.items())


def test_phases_pools_and_visuals(tiny_config, random_batch) -> None:
    method = _method(tiny_config, "method.pool_size=3")
    assert [(p.name, p.optimizers, p.frozen) for p in method.phases(CTX)] == [
        ("G", ("G", "G_BA"), ("D_B", "D_A")), ("D", ("D_B", "D_A"), ())]
    for step in range(2):
        state = method.forward_step(random_batch(batch_size=2, seed=step), CTX)
        method.discriminator_loss(state, CTX)
    assert method.pools["B"].count == method.pools["A"].count == 3
    shown = method.visuals(state)
    assert list(shown) == ["real_A", "fake_B", "rec_A", "real_B", "mask_B", "fake_A", "rec_B"]
    # The translation shown is G(x) without hidden features; the mask column is M(y) in grey, white = unmatched.
    with torch.no_grad():
        assert torch.allclose(shown["fake_B"], method.G(state.real_a), atol=1e-6)
    grey = shown["mask_B"]
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.allclose(
        (grey[:, :1] + 1) / 2, F.interpolate(state.mask_b, size=(32, 32), mode="bilinear", align_corners=True),
        atol=1e-6)
