"""ResNet generator with the paper's decomposition G = G_{K+1} o G_K o ... o G_1 (Sec. 4.2).

The layers form one flat sequence in the order of the public CUT/SRUNIT implementation, so a
feature layer is named by its position and that code's checkpoints map one-to-one onto
`layers.N...` keys. With the default (anti-aliased, 9 blocks) layout the 32 positions are:

    0 reflect-pad 3      4 conv 64->128     8 conv 128->256    12..20 residual blocks 1..9
    1 conv7x7 -> ngf     5 IN               9 IN               21 blur-upsample  25 blur-upsample
    2 IN                 6 ReLU            10 ReLU             22 conv 256->128  26 conv 128->64
    3 ReLU               7 blur-downsample 11 blur-downsample  23 IN, 24 ReLU    27 IN, 28 ReLU
                                                               29 reflect-pad 3, 30 conv7x7 -> 3, 31 tanh

The default feature layers (0, 4, 8, 12, 16) are the padded input (the paper's identity G_1), the
two down-sampling convs before their norm, and the outputs of residual blocks 1 and 5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from srunit.checks import check_value
from srunit.nn import BlurDownsample, BlurUpsample, ReflectionPad2d, ResnetBlock, at_least_float32, init_weights
from srunit.registry import NETWORKS

DEFAULT_FEATURE_LAYERS = (0, 4, 8, 12, 16)


@NETWORKS.register
class ResnetGenerator(nn.Module):
    """Image-to-image ResNet generator (Johnson et al.) as used by CUT and SRUNIT.

    x: (B, in_channels, H, W) in [-1, 1], H and W multiples of `size_multiple` (4)
    -> (B, out_channels, H, W) in [-1, 1].
    """

    size_multiple = 4
    multimodal = False  # the translator interface (srunit.runtime.translation): one output per image
    # Entry points wrapped by torch.compile when train.compile is on.
    compiled_methods = ("forward", "forward_with_features", "encode", "encode_layer", "decode_from", "decode_many",
                        "encode_many")

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        antialias: bool = True,
        antialias_up: bool = True,
        feature_layers: Sequence[int] = DEFAULT_FEATURE_LAYERS,
        init_gain: float = 0.02,
        init_type: str = "xavier",
    ) -> None:
        super().__init__()
        check_value(n_blocks >= 1, "model.n_blocks", n_blocks, "an integer >= 1")
        check_value(ngf >= 1, "model.ngf", ngf, "an integer >= 1")  # 0 was a ZeroDivisionError in the init
        self.config: dict[str, Any] = dict(
            in_channels=in_channels, out_channels=out_channels, ngf=ngf, n_blocks=n_blocks,
            antialias=antialias, antialias_up=antialias_up, feature_layers=list(feature_layers),
        )
        layers: list[nn.Module] = []
        channels: list[int] = []  # output channels after each position

        def add(module: nn.Module, out_ch: int) -> None:
            layers.append(module)
            channels.append(out_ch)

        add(ReflectionPad2d(3), in_channels)
        add(nn.Conv2d(in_channels, ngf, kernel_size=7), ngf)
        add(nn.InstanceNorm2d(ngf), ngf)
        add(nn.ReLU(inplace=True), ngf)
        ch = ngf
        for _ in range(2):
            if antialias:
                add(nn.Conv2d(ch, 2 * ch, kernel_size=3, padding=1), 2 * ch)
                add(nn.InstanceNorm2d(2 * ch), 2 * ch)
                add(nn.ReLU(inplace=True), 2 * ch)
                add(BlurDownsample(2 * ch), 2 * ch)
            else:
                add(nn.Conv2d(ch, 2 * ch, kernel_size=3, stride=2, padding=1), 2 * ch)
                add(nn.InstanceNorm2d(2 * ch), 2 * ch)
                add(nn.ReLU(inplace=True), 2 * ch)
            ch *= 2
        for _ in range(n_blocks):
            add(ResnetBlock(ch), ch)
        for _ in range(2):
            if antialias_up:
                add(BlurUpsample(ch), ch)
                add(nn.Conv2d(ch, ch // 2, kernel_size=3, padding=1), ch // 2)
            else:
                add(nn.ConvTranspose2d(ch, ch // 2, kernel_size=3, stride=2, padding=1, output_padding=1), ch // 2)
            add(nn.InstanceNorm2d(ch // 2), ch // 2)
            add(nn.ReLU(inplace=True), ch // 2)
            ch //= 2
        add(ReflectionPad2d(3), ch)
        add(nn.Conv2d(ch, out_channels, kernel_size=7), out_channels)
        add(nn.Tanh(), out_channels)

        feature_layers = tuple(int(i) for i in feature_layers)
        check_value(bool(feature_layers) and list(feature_layers) == sorted(set(feature_layers)),
                    "model.feature_layers", feature_layers, "strictly increasing layer positions")
        check_value(feature_layers[0] >= 0 and feature_layers[-1] < len(layers) - 1, "model.feature_layers",
                    feature_layers, f"positions in 0..{len(layers) - 2} (this generator has {len(layers)} layers)")
        # ReLU(inplace) right after a feature layer would overwrite the stored feature.
        for i in feature_layers:
            nxt = layers[i + 1]
            if isinstance(nxt, nn.ReLU):
                layers[i + 1] = nn.ReLU(inplace=False)
        self.layers = nn.ModuleList(layers)
        self.feature_layers = feature_layers
        self.feature_channels: tuple[int, ...] = tuple(channels[i] for i in feature_layers)
        # Keep only the activations at feature layers and recompute the layers between them in the
        # backward pass (train.activation_checkpointing): for large crops, where activations dominate memory.
        self.activation_checkpointing = False
        init_weights(self, init_gain, init_type)

    def _layers(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        for layer in self.layers[start:stop]:
            x = layer(x)
        return x

    def _run(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Layers ``start..stop-1`` applied to x. With activation checkpointing (while gradients are
        recorded) the range is one checkpointed segment: only its input is kept for the backward
        pass, which runs the range again. Ranges end at feature layers, whose outputs are kept anyway."""
        if stop - start < 1:
            return x
        single = stop - start == 1 and not isinstance(self.layers[start], ResnetBlock)
        if not (self.activation_checkpointing and torch.is_grad_enabled()) or single:
            return self._layers(x, start, stop)
        first = self.layers[start]
        if isinstance(first, nn.ReLU) and first.inplace:
            # A segment must not change its saved input in place: the ReLU runs before the segment.
            x, start = first(x), start + 1
        return checkpoint(self._layers, x, start, stop, use_reentrant=False) if stop > start else x

    @property
    def num_features(self) -> int:
        """K, the number of feature layers."""
        return len(self.feature_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, 0, len(self.layers))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One pass returning the image G(x) and the K features G^k_1(x), k = 1..K."""
        feats: list[torch.Tensor] = []
        start = 0
        for position in self.feature_layers:
            x = self._run(x, start, position + 1)
            feats.append(x)
            start = position + 1
        return self._run(x, start, len(self.layers)), feats

    def encode(self, x: torch.Tensor, num_features: int | None = None) -> list[torch.Tensor]:
        """Features G^k_1(x) for k = 1..num_features (default K); stops after the last needed layer.

        Returns a list of (B, C_k, H_k, W_k) tensors, C_k = `feature_channels[k-1]`.
        """
        n = self.num_features if num_features is None else num_features
        if not 1 <= n <= self.num_features:
            raise ValueError(f"num_features must be in 1..{self.num_features}, got {n}")
        feats: list[torch.Tensor] = []
        start = 0
        for position in self.feature_layers[:n]:
            x = self._run(x, start, position + 1)
            feats.append(x)
            start = position + 1
        return feats

    def encode_layer(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """G^k_1(x) for a single 0-based feature index k."""
        return self._run(x, 0, self.feature_layers[k] + 1)

    def decode_from(self, k: int, h: torch.Tensor, *, exact_input: bool = False) -> torch.Tensor:
        """G^{K+1}_k: run the rest of the network from 0-based feature index k; h = G^k_1(x).

        With ``exact_input`` the first layer runs in float32 outside any autocast region, so it
        sees ``h`` exactly (the robustness loss feeds G^k_1(x) + tau_k, and a bfloat16 cast would
        round tau_k away); the later layers run in the surrounding precision.
        """
        return self.decode_many((k,), (h,), exact_input=exact_input)

    def decode_many(self, ks: Sequence[int], hs: Sequence[torch.Tensor], *, exact_input: bool = False
                    ) -> torch.Tensor:
        """G^{K+1}_k(h_k) for several feature indices in one pass whose batch grows.

        ``ks`` must name increasingly deep layers. The pass starts after layer ``ks[0]`` with
        ``hs[0]`` and appends each further ``hs[i]`` to the batch once it reaches layer ``ks[i]``,
        so every copy runs exactly the layers ``decode_from(ks[i], hs[i])`` runs. Images and
        instance norms are per sample, so the result equals the separate passes.

        hs[i]: (B_i, C_k, H_k, W_k) -> (sum B_i, out_channels, H, W), the copies in the order of ``ks``.
        ``exact_input`` as for ``decode_from``, for every copy's first layer.
        """
        positions = [self.feature_layers[k] for k in ks]
        if not positions or positions != sorted(set(positions)) or len(hs) != len(positions):
            raise ValueError(f"decode_many needs one tensor per feature index and increasing indices, got {list(ks)}")
        x: torch.Tensor | None = None
        done = positions[0] + 1  # layers before this one have run on every copy in the batch
        for position, new in zip(positions, hs):
            if x is not None:
                x = self._run(x, done, position + 1)  # the copies in the batch reach this feature layer
            if exact_input:
                with torch.autocast(new.device.type, enabled=False):
                    x = self._run(
                        at_least_float32(new) if x is None else torch.cat([at_least_float32(x), at_least_float32(new)]),
                        position + 1,
                        position + 2,
                    )
            else:
                x = self._run(new if x is None else torch.cat([x, new.to(x.dtype)]), position + 1, position + 2)
            done = position + 2
        assert x is not None
        return self._run(x, done, len(self.layers))

    def encode_many(self, x: torch.Tensor, ks: Sequence[int], sizes: Sequence[int]) -> list[torch.Tensor]:
        """G^k_1 of consecutive row blocks of ``x`` in one pass whose batch shrinks.

        Block i (``sizes[i]`` rows, in order) is encoded up to feature index ``ks[i]``; ``ks`` must
        name increasingly deep layers, so each block leaves the batch when it reaches its layer.
        Returns [G^{ks[i]}_1(block i)], each equal to ``encode_layer(block i, ks[i])``.
        """
        positions = [self.feature_layers[k] for k in ks]
        if (
            not positions
            or positions != sorted(set(positions))
            or len(sizes) != len(positions)
            or sum(sizes) != x.shape[0]
        ):
            raise ValueError(
                f"encode_many needs increasing feature indices and block sizes summing to the batch, "
                f"got {list(ks)} and {list(sizes)} for {x.shape[0]} rows"
            )
        out: list[torch.Tensor] = []
        start = 0
        for position, n in zip(positions, sizes):
            x = self._run(x, start, position + 1)
            out.append(x[:n])
            x = x[n:]
            start = position + 1
        return out
