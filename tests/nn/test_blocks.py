"""srunit.nn.blocks: the anti-aliasing filters and the residual block."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srunit.nn import BlurDownsample, BlurUpsample, ReflectionPad2d, ResnetBlock, reflect_pad


def test_blur_filters_match_their_definition() -> None:
    down = BlurDownsample(1)
    row = torch.tensor([1.0, 2.0, 1.0])
    assert torch.allclose(down.filt[0, 0], torch.outer(row, row) / 16)
    up = BlurUpsample(1)
    row = torch.tensor([1.0, 3.0, 3.0, 1.0])
    assert torch.allclose(up.filt[0, 0], torch.outer(row, row) / 64 * 4)
    torch.manual_seed(0)
    x = torch.rand(1, 1, 6, 7)
    assert down(x).shape == (1, 1, 3, 4)
    assert up(x).shape == (1, 1, 12, 14)
    # A constant image stays constant (the filters are normalised, borders padded).
    c = torch.full((1, 1, 6, 6), 0.3)
    assert torch.allclose(down(c), torch.full((1, 1, 3, 3), 0.3))
    assert torch.allclose(up(c), torch.full((1, 1, 12, 12), 0.3))


def test_resnet_block_is_a_residual_with_public_names() -> None:
    torch.manual_seed(0)
    block = ResnetBlock(4)
    assert any(k.startswith("conv_block.") for k in block.state_dict())  # the public CUT key layout
    x = torch.randn(2, 4, 8, 8)
    c1, c2 = block.conv_block[1], block.conv_block[5]
    with torch.no_grad():
        # x + IN(conv(pad(ReLU(IN(conv(pad(x))))))), written with the functional ops.
        h = F.relu(F.instance_norm(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), c1.weight, c1.bias)))
        expected = x + F.instance_norm(F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), c2.weight, c2.bias))
        out = block(x)
    assert out.shape == x.shape
    assert torch.allclose(out, expected, atol=1e-5)


def test_bf16_autocast_keeps_padding_in_bf16_and_blurs_in_float32_on_the_cpu() -> None:
    """CPU autocast would run reflection padding in float32 (two conversions per pad); ours keeps bf16.
    The blur filters compute in float32 on the CPU and return the input's dtype: the bf16 result is
    the float32 blur of the same bf16 values, rounded once."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 10).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert F.pad(x, (1, 1, 1, 1), mode="reflect").dtype == torch.float32  # what autocast does by itself
        padded = reflect_pad(x, 1)
        assert padded.dtype == torch.bfloat16 and ReflectionPad2d(2)(x).dtype == torch.bfloat16
        down, up = BlurDownsample(4)(x), BlurUpsample(4)(x)
    assert torch.equal(padded, F.pad(x.float(), (1, 1, 1, 1), mode="reflect").to(torch.bfloat16))
    assert down.dtype == up.dtype == torch.bfloat16
    assert torch.equal(down, BlurDownsample(4)(x.float()).to(torch.bfloat16))
    assert torch.equal(up, BlurUpsample(4)(x.float()).to(torch.bfloat16))
    # Gradients flow back in the input's dtype.
    leaf = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (BlurUpsample(4)(BlurDownsample(4)(reflect_pad(leaf, 1))).float().sum()).backward()
    assert leaf.grad is not None and leaf.grad.dtype == torch.bfloat16 and torch.isfinite(leaf.grad).all()


@pytest.mark.parametrize("cls", [BlurDownsample, BlurUpsample])
# (2, 3) holds an odd and an even side in the fast tier; (6, 7) and (5, 4) run in the full suite.
@pytest.mark.parametrize("size", [pytest.param((6, 7), marks=pytest.mark.slow),
                                  pytest.param((5, 4), marks=pytest.mark.slow), (2, 3)])
def test_blur_backward_is_the_adjoint_and_keeps_no_activation(cls, size: tuple[int, int]) -> None:
    """The blurs' backward pass applies the filter's adjoint to the gradient (checked against finite
    differences, in float64, twice differentiable for E6's penalty) and keeps only the constant filter."""
    torch.manual_seed(0)
    blur = cls(3).double()
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(blur, (x,))
    assert torch.autograd.gradgradcheck(blur, (x,))
    saved: list[torch.Tensor] = []

    def keep(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        blur(x)
    assert saved and all(t.untyped_storage().data_ptr() == blur.filt.untyped_storage().data_ptr() for t in saved)


# (2, 1, 3, 0) holds uneven sides and a side of 0 in the fast tier; the wider even pad runs in the full suite.
@pytest.mark.parametrize("pad", [(1, 1, 1, 1), pytest.param((3, 3, 3, 3), marks=pytest.mark.slow), (2, 1, 3, 0)])
def test_reflection_pad_backward_folds_the_gradient_and_keeps_nothing(pad: tuple[int, int, int, int]) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    y = reflect_pad(x, pad)
    assert torch.equal(y, F.pad(x, pad, mode="reflect"))
    g = torch.randn_like(y)
    (ours,) = torch.autograd.grad(y, x, g)
    (torchs,) = torch.autograd.grad(F.pad(x, pad, mode="reflect"), x, g)
    assert torch.allclose(ours, torchs, rtol=0, atol=1e-12)
    assert torch.autograd.gradgradcheck(lambda t: reflect_pad(t, pad), (x,))
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        reflect_pad(x, pad)
    assert saved == []
