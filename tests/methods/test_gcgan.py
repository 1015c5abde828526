"""srunit.methods.gcgan: the transformations, L_geo's stop-gradients, the G and D losses recomputed from
their definitions for both geometries and both generator layouts, and the square-image checks."""

from __future__ import annotations

import pytest
import torch

from srunit.config import load_config
from srunit.errors import ConfigError
from srunit.methods import GcGAN, GcGANOptions, StepContext, build_method
from srunit.methods.gcgan import inverse_transform, transform

CTX = StepContext(0, 10, 0)


def _rot_clockwise(x: torch.Tensor) -> torch.Tensor:
    """Clockwise by 90 degrees, pixel by pixel: out[i, j] = x[H - 1 - j, i]."""
    h, w = x.shape[-2:]
    out = x.new_empty(*x.shape[:-2], w, h)
    for i in range(w):
        for j in range(h):
            out[..., i, j] = x[..., h - 1 - j, i]
    return out


def _flip_rows(x: torch.Tensor) -> torch.Tensor:
    return x[..., torch.arange(x.shape[-2] - 1, -1, -1), :]


def test_transforms_are_a_clockwise_rotation_and_a_vertical_flip_with_their_inverses() -> None:
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    assert torch.equal(transform(x, "rot"), _rot_clockwise(x))
    assert transform(x, "rot")[0, 0, 0].tolist() == [15.0, 10.0, 5.0, 0.0]  # the first column, read upwards
    assert torch.equal(transform(x, "vf"), _flip_rows(x))
    for g in ("rot", "vf"):
        assert torch.equal(inverse_transform(transform(x, g), g), x)
        assert torch.equal(transform(inverse_transform(x, g), g), x)


def test_geometry_loss_has_the_value_of_both_terms_and_the_gradient_of_one(tiny_config) -> None:
    """The public code detaches each term's target: the value is |a - f^-1(b)| + |b - f(a)| (twice the
    first, as f permutes pixels) and the gradient that of |a - f^-1(b)| alone."""
    for geometry in ("rot", "vf"):
        config = tiny_config("gcgan", f"method.geometry={geometry}")
        method = build_method(config.method, config.model)
        torch.manual_seed(0)
        a, b = torch.randn(2, 3, 8, 8, requires_grad=True), torch.randn(2, 3, 8, 8, requires_grad=True)
        loss = method.geometry_loss(a, b)
        one = (a - inverse_transform(b, geometry)).abs().mean()
        assert loss.item() == pytest.approx(2 * one.item(), rel=1e-6)
        grads = torch.autograd.grad(loss, (a, b))
        expected = torch.autograd.grad(one, (a, b))
        assert all(torch.allclose(g, e, atol=1e-9) for g, e in zip(grads, expected))


def test_gcgan_options_and_the_square_image_checks(tiny_config, random_batch) -> None:
    o = GcGANOptions()
    assert (o.geometry, o.share_generator, o.lambda_gan, o.lambda_ab, o.lambda_gc, o.lambda_identity, o.pool_size) \
        == ("rot", True, 1.0, 10.0, 2.0, 0.5, 50)
    with pytest.raises(ConfigError, match="method.geometry: invalid value 'hf'; allowed: rot, vf"):
        load_config("gcgan", ["method.geometry=hf"])
    for kwargs, key in (({"lambda_gc": -1.0}, "method.lambda_gc"), ({"pool_size": -2}, "method.pool_size")):
        with pytest.raises(ConfigError, match=f"{key}: invalid value"):
            GcGANOptions(**kwargs)
    # Rotation needs square images: only the cropping modes give them.
    with pytest.raises(ConfigError, match=r"method.geometry 'rot' .* needs square images.*method.geometry=vf"):
        load_config("gcgan", ["data.preprocess=scale_width", "method.pool_size=0", "train.batch_size=1"])
    config = load_config("gcgan", ["data.preprocess=scale_width", "method.pool_size=0", "method.geometry=vf",
                                   "train.batch_size=1"])
    assert config.method.geometry == "vf"
    with pytest.raises(ConfigError, match="method.pool_size 50 needs images of one size"):
        load_config("gcgan", ["data.preprocess=none", "method.geometry=vf", "train.batch_size=1"])
    # A non-square batch reaching a rotating GcGAN (e.g. from library code) is refused clearly.
    config = tiny_config("gcgan")
    method = build_method(config.method, config.model)
    batch = {k: v[..., :24] for k, v in random_batch(batch_size=1).items()}
    with pytest.raises(ConfigError, match="needs square images, got 32x24"):
        method.forward_step(batch, CTX)
    vf = tiny_config("gcgan", "method.geometry=vf")
    state = build_method(vf.method, vf.model).forward_step(batch, CTX)
    assert state.fake_gc_b.shape == (1, 3, 32, 24)


def _mse(x: torch.Tensor, target: float) -> torch.Tensor:
    return ((x - target) ** 2).mean()


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean()


def _reference_losses(method: GcGAN, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Total G and D loss from the definitions, one image and one network call at a time, with f
    written pixel by pixel (rot) or by row indices (vf)."""
    o = method.options
    f = _rot_clockwise if o.geometry == "rot" else _flip_rows
    g_gc = method.G if o.share_generator else method.G_gc
    g_total, d_total = torch.zeros(()), torch.zeros(())
    for i in range(x.shape[0]):
        xi, yi = x[i : i + 1], y[i : i + 1]
        fake, fake_gc = method.G(xi), g_gc(f(xi))
        gan = o.lambda_gan * (_mse(method.D(fake), 1.0) + _mse(method.D_gc(fake_gc), 1.0))
        # f^-1(b) compared with a is f(a) compared with b: L_geo = |G(x) - f^-1(G_gc(f x))| + |G_gc(f x) - f(G(x))|.
        geo = o.lambda_ab * o.lambda_gc * 2 * _l1(f(fake), fake_gc)
        idt = o.lambda_ab * o.lambda_identity * (_l1(method.G(yi), yi) + _l1(g_gc(f(yi)), f(yi)))
        d = 0.5 * (_mse(method.D(yi), 1.0) + _mse(method.D(fake), 0.0))
        d = d + 0.5 * (_mse(method.D_gc(f(yi)), 1.0) + _mse(method.D_gc(fake_gc), 0.0))
        g_total, d_total = g_total + gan + geo + idt, d_total + d
    return g_total / x.shape[0], d_total / x.shape[0]


@pytest.mark.parametrize(("geometry", "share"), [("rot", True), ("vf", True), ("rot", False)])
def test_generator_and_discriminator_losses_match_their_definitions(tiny_config, random_batch, geometry: str,
                                                                    share: bool) -> None:
    config = tiny_config("gcgan", f"method.geometry={geometry}", f"method.share_generator={share}",
                         "method.lambda_gan=0.7", "method.lambda_gc=1.5", "method.lambda_identity=0.3")
    torch.manual_seed(0)
    method = build_method(config.method, config.model)
    assert set(method.networks()) == ({"G", "D", "D_gc"} if share else {"G", "G_gc", "D", "D_gc"})
    assert method.phases(CTX)[0].optimizers == (("G",) if share else ("G", "G_gc"))
    assert [p.name for p in method.phases(CTX)] == ["G", "D"] and method.phases(CTX)[0].frozen == ("D", "D_gc")
    batch = random_batch(batch_size=2)
    state = method.forward_step(batch, CTX)
    g_loss, g_logs = method.generator_loss(state, CTX)
    d_loss, d_logs = method.discriminator_loss(state, CTX)
    with torch.no_grad():
        g_ref, d_ref = _reference_losses(method, batch["A"], batch["B"])
    assert g_loss.item() == pytest.approx(g_ref.item(), rel=1e-5)
    assert d_loss.item() == pytest.approx(d_ref.item(), rel=1e-5)
    assert set(g_logs) == {"G_GAN", "G_GAN_gc", "gc", "idt", "idt_gc", "G"} and set(d_logs) == {"D_B", "D_gc", "D"}
    visuals = method.visuals(state)
    assert set(visuals) == {"real_A", "fake_B", "fake_B_gc", "real_B"}
    assert visuals["fake_B_gc"].shape == batch["A"].shape
