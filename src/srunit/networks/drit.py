"""The networks of DRIT (Lee et al., ECCV 2018, "Diverse Image-to-Image Translation via Disentangled
Representations"), laid out as in the authors' public code with its default concat variant.

An image is split into a content code z_c = E^c(x), a (B, 4*ngf, H/4, W/4) feature map shared by both
domains, and an attribute code z_a = E^a(x), a (B, nz) vector of its own domain. G_A and G_B turn a
content code and an attribute code into an image of their domain; the attribute code is tiled and
concatenated to the features before every stage of the decoder. Per domain the content encoders and
the generators have their own layers, and share the residual block nearest to the content code.

Widths: ``ngf`` is the first width of the content and of the attribute encoder (64 in the public
code, so the content code has 256 channels), ``ndf`` the first width of the domain discriminators
(64). Every network is initialised as the public code does: conv and transposed-conv weights from
N(0, 0.02), biases and linear layers with PyTorch's defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srunit.checks import check_value
from srunit.nn import ReflectionPad2d, ResnetBlock
from srunit.registry import NETWORKS
from srunit.runtime.translation import attribute_batch

__all__ = [
    "ATTRIBUTE_MIN_SIZE", "ContentDiscriminator", "DRITAttributeEncoder", "DRITContentEncoder", "DRITGenerator",
    "DRITTranslator", "MultiScaleDiscriminator",
]

# The attribute encoder halves an image four times and pads before three of the halvings.
ATTRIBUTE_MIN_SIZE = 16
# The public code's activations: LeakyReLU's default slope in the discriminators and the content
# encoder's first layer, 0.2 in the attribute encoder.
_SLOPE = 0.01
_ATTRIBUTE_SLOPE = 0.2


def _init_drit(module: nn.Module, std: float) -> nn.Module:
    """Conv and transposed-conv weights ~ N(0, std); biases and linear layers keep PyTorch's initialisation."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
    return module


def _conv(c_in: int, c_out: int, kernel: int, stride: int, pad: int) -> list[nn.Module]:
    """Reflection padding, then an unpadded convolution (the public code's convolutions)."""
    layers: list[nn.Module] = [ReflectionPad2d(pad)] if pad else []
    return [*layers, nn.Conv2d(c_in, c_out, kernel, stride=stride)]


def _tile(z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """z: (B, nz) -> (B, nz, H, W) of `like`'s size, in `like`'s dtype."""
    return z[:, :, None, None].to(like.dtype).expand(-1, -1, *like.shape[2:])


class GaussianNoise(nn.Module):
    """x + N(0, I) in training mode, x unchanged in eval mode (the public content encoder's last layer)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.randn_like(x) if self.training else x


class LayerNorm2d(nn.Module):
    """Normalise each image over (C, H, W) together, then scale and shift per channel (weight 1, bias 0)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            # ONNX's LayerNormalization needs the normalised shape when exported; these moments are the
            # same normalisation for sizes known only at run time (srunit export checks the two agree).
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            var = (x - mean).pow(2).mean(dim=(1, 2, 3), keepdim=True)
            return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
        shape = x.shape[1:]
        return F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape), self.eps)


class _DownBlock(nn.Module):
    """The attribute encoder's residual down-sampling block: (B, c_in, H, W) -> (B, c_out, H/2, W/2).

    Path: LReLU, conv3x3 c_in -> c_in, LReLU, conv3x3 c_in -> c_out, 2x2 average pool;
    shortcut: 2x2 average pool, conv1x1 c_in -> c_out. No normalisation.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.path = nn.Sequential(
            nn.LeakyReLU(_ATTRIBUTE_SLOPE), *_conv(c_in, c_in, 3, 1, 1),
            nn.LeakyReLU(_ATTRIBUTE_SLOPE), *_conv(c_in, c_out, 3, 1, 1), nn.AvgPool2d(2),
        )
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.path(x) + self.shortcut(x)


@NETWORKS.register
class DRITContentEncoder(nn.Module):
    """E^c_A and E^c_B: x (B, in_channels, H, W) -> z_c (B, 4*ngf, ceil(H/4), ceil(W/4)).

    Per domain: conv7x7 -> ngf with LReLU(0.01), two stride-2 conv3x3 with instance norm and ReLU,
    `n_blocks` residual blocks; then the shared block(s) and, in training mode only, N(0, I) noise.
    """

    compiled_methods = ("forward", "encode_a", "encode_b")

    def __init__(self, in_channels: int = 3, ngf: int = 64, n_blocks: int = 3, n_shared: int = 1,
                 init_std: float = 0.02) -> None:
        super().__init__()
        check_value(ngf >= 1, "model.ngf", ngf, "an integer >= 1")
        self.config: dict[str, Any] = dict(in_channels=in_channels, ngf=ngf, n_blocks=n_blocks, n_shared=n_shared)
        self.channels = 4 * ngf
        self.domain_a = self._domain(in_channels, ngf, n_blocks)
        self.domain_b = self._domain(in_channels, ngf, n_blocks)
        self.shared = nn.Sequential(*(ResnetBlock(self.channels) for _ in range(n_shared)), GaussianNoise())
        _init_drit(self, init_std)

    @staticmethod
    def _domain(in_channels: int, ngf: int, n_blocks: int) -> nn.Sequential:
        layers: list[nn.Module] = [*_conv(in_channels, ngf, 7, 1, 3), nn.LeakyReLU(_SLOPE)]
        ch = ngf
        for _ in range(2):
            layers += [*_conv(ch, 2 * ch, 3, 2, 1), nn.InstanceNorm2d(2 * ch), nn.ReLU()]
            ch *= 2
        layers += [ResnetBlock(ch) for _ in range(n_blocks)]
        return nn.Sequential(*layers)

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(E^c_A(x_a), E^c_B(x_b)); x_a and x_b of the same H, W. The shared layers run once on both
        (instance norm and the noise are per image, so this equals two passes)."""
        h_a, h_b = self.domain_a(x_a), self.domain_b(x_b)
        return self.shared(torch.cat([h_a, h_b])).split([h_a.shape[0], h_b.shape[0]])

    def encode_a(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(self.domain_a(x))

    def encode_b(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(self.domain_b(x))


@NETWORKS.register
class DRITAttributeEncoder(nn.Module):
    """E^a_A and E^a_B (the public concat variant): x (B, in_channels, H, W) -> (mu, logvar), each (B, nz),
    of the Gaussian q(z_a | x). H and W must be at least ATTRIBUTE_MIN_SIZE (16).

    Per domain: stride-2 conv4x4 -> ngf, three residual down-sampling blocks to 2, 3, 4 * ngf channels,
    LReLU(0.2), global average pool, and two linear heads for the mean and the log-variance.
    """

    compiled_methods = ("encode_a", "encode_b")

    def __init__(self, in_channels: int = 3, ngf: int = 64, nz: int = 8, init_std: float = 0.02) -> None:
        super().__init__()
        check_value(nz >= 1, "method.nz", nz, "an integer >= 1")
        self.config: dict[str, Any] = dict(in_channels=in_channels, ngf=ngf, nz=nz)
        self.nz = nz
        self.features_a, self.mu_a, self.logvar_a = self._domain(in_channels, ngf, nz)
        self.features_b, self.mu_b, self.logvar_b = self._domain(in_channels, ngf, nz)
        _init_drit(self, init_std)

    @staticmethod
    def _domain(in_channels: int, ngf: int, nz: int) -> tuple[nn.Sequential, nn.Linear, nn.Linear]:
        layers: list[nn.Module] = _conv(in_channels, ngf, 4, 2, 1)
        for n in range(1, 4):
            layers.append(_DownBlock(ngf * n, ngf * (n + 1)))
        layers += [nn.LeakyReLU(_ATTRIBUTE_SLOPE), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        return nn.Sequential(*layers), nn.Linear(4 * ngf, nz), nn.Linear(4 * ngf, nz)

    def encode_a(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features_a(x)
        return self.mu_a(h), self.logvar_a(h)

    def encode_b(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features_b(x)
        return self.mu_b(h), self.logvar_b(h)


class _Decoder(nn.Module):
    """One domain's decoder of the concat variant; z_a is concatenated before every stage.

    (B, C, h, w) + (B, nz) -> (B, out_channels, 4h, 4w): `n_blocks` residual blocks at C + nz
    channels, two stride-2 transposed conv3x3 with layer norm and ReLU, a 1x1 transposed conv, tanh.
    """

    def __init__(self, channels: int, nz: int, out_channels: int, n_blocks: int) -> None:
        super().__init__()
        ch = channels + nz
        self.blocks = nn.Sequential(*(ResnetBlock(ch) for _ in range(n_blocks)))
        ups = []
        for _ in range(2):
            ch += nz
            ups.append(nn.Sequential(
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                LayerNorm2d(ch // 2), nn.ReLU(),
            ))
            ch //= 2
        self.ups = nn.ModuleList(ups)
        self.out = nn.Sequential(nn.ConvTranspose2d(ch + nz, out_channels, 1), nn.Tanh())

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(torch.cat([h, _tile(z, h)], 1))
        for up in self.ups:
            h = up(torch.cat([h, _tile(z, h)], 1))
        return self.out(torch.cat([h, _tile(z, h)], 1))


@NETWORKS.register
class DRITGenerator(nn.Module):
    """G_A and G_B (the public concat variant): z_c (B, 4*ngf, h, w) and z_a (B, nz) -> an image
    (B, out_channels, 4h, 4w) in [-1, 1] of domain A (`decode_a`) or B (`decode_b`).

    The first residual block on the content code is shared by both domains.
    """

    compiled_methods = ("decode_a", "decode_b")

    def __init__(self, out_channels: int = 3, ngf: int = 64, nz: int = 8, n_shared: int = 1, n_blocks: int = 3,
                 init_std: float = 0.02) -> None:
        super().__init__()
        check_value(nz >= 1, "method.nz", nz, "an integer >= 1")
        self.config: dict[str, Any] = dict(out_channels=out_channels, ngf=ngf, nz=nz, n_shared=n_shared,
                                           n_blocks=n_blocks)
        self.nz = nz
        self.shared = nn.Sequential(*(ResnetBlock(4 * ngf) for _ in range(n_shared)))
        self.domain_a = _Decoder(4 * ngf, nz, out_channels, n_blocks)
        self.domain_b = _Decoder(4 * ngf, nz, out_channels, n_blocks)
        _init_drit(self, init_std)

    def decode_a(self, content: torch.Tensor, attribute: torch.Tensor) -> torch.Tensor:
        return self.domain_a(self.shared(content), attribute)

    def decode_b(self, content: torch.Tensor, attribute: torch.Tensor) -> torch.Tensor:
        return self.domain_b(self.shared(content), attribute)

    @classmethod
    def translator_from_file(cls, path: Path) -> DRITTranslator:
        """The A -> B translator of the DRIT checkpoint whose generator file is ``path``: the content and
        attribute encoders (E_c, E_a .safetensors) lie beside it (see srunit.runtime.translation)."""
        from srunit.errors import CheckpointError
        from srunit.runtime.network_files import build_network

        folder = Path(path).parent
        hint = "a DRIT checkpoint folder holds E_c, E_a and G .safetensors"
        parts: dict[str, nn.Module] = {}
        for name, part in (("E_c", DRITContentEncoder), ("E_a", DRITAttributeEncoder), ("G", cls)):
            file = Path(path) if name == "G" else folder / f"{name}.safetensors"
            if not file.is_file():
                raise CheckpointError(f"{file} is missing; {hint}")
            parts[name] = build_network(part, file, hint=hint)
        return DRITTranslator(parts["E_c"], parts["G"], parts["E_a"])  # type: ignore[arg-type]


@NETWORKS.register
class MultiScaleDiscriminator(nn.Module):
    """x (B, in_channels, H, W) -> a list of `n_scales` logit maps (B, 1, H / 2^(s + n_layers), ...), one
    per scale s; the input of each further scale is the previous one average-pooled by 2 (3x3, stride 2).

    Each scale: `n_layers` reflection-padded stride-2 conv4x4 with LReLU(0.01), widths ndf, 2 ndf, ...,
    then a 1x1 conv to one logit. No normalisation (the public code's default).
    The smallest scale needs a side of at least 2^(n_scales + n_layers - 1) pixels.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 4, n_scales: int = 3,
                 init_std: float = 0.02) -> None:
        super().__init__()
        check_value(n_layers >= 1, "method.dis_layers", n_layers, "an integer >= 1")
        check_value(n_scales >= 1, "method.dis_scales", n_scales, "an integer >= 1")
        self.config: dict[str, Any] = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, n_scales=n_scales)
        self.scales = nn.ModuleList(self._scale(in_channels, ndf, n_layers) for _ in range(n_scales))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        _init_drit(self, init_std)

    @staticmethod
    def _scale(in_channels: int, ndf: int, n_layers: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        ch_in, ch = in_channels, ndf
        for _ in range(n_layers):
            layers += [*_conv(ch_in, ch, 4, 2, 1), nn.LeakyReLU(_SLOPE)]
            ch_in, ch = ch, 2 * ch
        layers.append(nn.Conv2d(ch_in, 1, 1))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, scale in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            out.append(scale(x))
        return out


@NETWORKS.register
class ContentDiscriminator(nn.Module):
    """z_c (B, channels, h, w) -> logits (B, 1, h', w'): which domain a content code came from.

    `n_layers` reflection-padded (1) stride-2 conv7x7, a conv4x4 without padding, each with LReLU(0.01)
    and no normalisation, and a 1x1 conv to one logit; all at `channels` channels. The public code
    (3 layers) gives one logit for the 54x54 codes of 216 px crops.
    """

    def __init__(self, channels: int = 256, n_layers: int = 3, init_std: float = 0.02) -> None:
        super().__init__()
        check_value(n_layers >= 0, "method.content_dis_layers", n_layers, "an integer >= 0")
        self.config: dict[str, Any] = dict(channels=channels, n_layers=n_layers)
        layers: list[nn.Module] = []
        for _ in range(n_layers):
            layers += [*_conv(channels, channels, 7, 2, 1), nn.LeakyReLU(_SLOPE)]
        layers += [nn.Conv2d(channels, channels, 4), nn.LeakyReLU(_SLOPE), nn.Conv2d(channels, 1, 1)]
        self.layers = nn.Sequential(*layers)
        _init_drit(self, init_std)

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        return self.layers(content)


class DRITTranslator(nn.Module):
    """Translation A -> B of a trained DRIT: G_B(E^c_A(x), z_a).

    x: (B, 3, H, W) in [-1, 1], H and W multiples of `size_multiple` (4) -> (B, 3, H, W) in [-1, 1].
    z_a is `attribute`, (nz,) for every image or (B, nz), or, if None, the code of seed 0
    (`attribute_from_seed(0, nz)`), so the output is a deterministic function of x. An attribute code
    can also come from a domain-B reference image (`encode_attribute`).
    Holds the method's networks themselves (no copies), so it is not a network of its own.
    """

    size_multiple = 4
    multimodal = True  # the translator interface (srunit.runtime.translation)
    attribute_min_size = ATTRIBUTE_MIN_SIZE

    def __init__(self, content: DRITContentEncoder, generator: DRITGenerator,
                 attribute: DRITAttributeEncoder | None = None) -> None:
        super().__init__()
        self.content = content
        self.decoder = generator
        self.attribute = attribute

    @property
    def nz(self) -> int:
        return self.decoder.nz

    @property
    def activation_checkpointing(self) -> bool:
        return False

    @activation_checkpointing.setter
    def activation_checkpointing(self, on: bool) -> None:
        check_value(not on, "train.activation_checkpointing", on,
                    "false for DRIT (its networks keep their activations)")

    def forward(self, x: torch.Tensor, attribute: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder.decode_b(self.content.encode_a(x), attribute_batch(attribute, x, self.nz).to(x.dtype))

    def encode_attribute(self, reference: torch.Tensor) -> torch.Tensor:
        """The mean of E^a_B's code of domain-B images: reference (B, 3, H, W) in [-1, 1], H, W >= 16 -> (B, nz)."""
        if self.attribute is None:
            raise ValueError("this translator was built without the attribute encoder")
        return self.attribute.encode_b(reference)[0]
