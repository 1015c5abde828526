"""A history of generated images for the discriminator updates (Shrivastava et al. 2017; CycleGAN Sec. 4).

The discriminator sees a mix of the newest translations and older ones, which damps the
oscillation of the two players. Semantics of the CycleGAN pool, image by image in batch order:
while fewer than `size` images are stored, the new image is stored and returned; once the pool is
full, with probability 1/2 a uniformly chosen stored image is returned and the new one takes its
place, else the new image is returned.

Built for the step loop without host-device syncs: the buffer is one preallocated device tensor,
the fill count is a host integer that grows by the batch size, and the replace decisions are drawn
on the device and applied with `torch.where` and indexing; only the drawn slots are written.
"""

from __future__ import annotations

from typing import Any

import torch

from srunit.errors import ConfigError
from srunit.methods.base import TranslationMethod
from srunit.nn import at_least_float32
from srunit.options import DataConfig

__all__ = ["ImagePool", "check_pool_size", "load_pools_state", "pools_state"]


class ImagePool:
    """`size` generated images of one domain; `query` mixes them into the batch the discriminator sees.

    Not a module: the pool is method state saved in state.pt (`state_dict`), not a network. Under
    DDP every process keeps its own pool of the images it generated.
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.count = 0  # images stored so far (host integer; <= size)
        self.images: torch.Tensor | None = None  # (size, C, H, W) float32, allocated by the first query

    def _draw(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """For n images of a full pool: whether each swaps (bool, p = 1/2) and the slot it swaps with."""
        swap = torch.rand(n, device=device) < 0.5
        slot = torch.randint(self.size, (n,), device=device)
        return swap, slot

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, C, H, W) -> (B, C, H, W) of the same dtype: each a new image or a stored one.

        Returns detached images; a pool of size 0 returns the input itself (detached).
        """
        if not isinstance(images, torch.Tensor):  # a list was an AttributeError ('list' ... 'detach')
            raise TypeError(f"ImagePool.query: images must be a (B, C, H, W) tensor, got {type(images).__name__}")
        images = images.detach()
        if self.size == 0:
            return images
        new = at_least_float32(images)
        if self.images is None:
            self.images = new.new_zeros((self.size, *new.shape[1:]))
        elif self.images.shape[1:] != new.shape[1:]:
            raise ValueError(f"the image pool holds images of shape {tuple(self.images.shape[1:])}, got "
                             f"{tuple(new.shape[1:])}; a pool needs images of one size (a cropping data.preprocess)")
        elif self.images.device != new.device:  # restored from a checkpoint on the CPU
            self.images = self.images.to(new.device)
        fill = min(new.shape[0], self.size - self.count)
        if fill:
            self.images[self.count : self.count + fill] = new[:fill]
            self.count += fill
        if fill == new.shape[0]:
            return images
        rest = new[fill:]
        out = self._swap(rest, *self._draw(rest.shape[0], rest.device))
        return torch.cat([images[:fill], out.to(images.dtype)])

    def _swap(self, new: torch.Tensor, swap: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        """The full-pool step for n images in order: new (n, C, H, W), swap (n,) bool, slot (n,) int64.

        Image j that swaps returns what its slot holds at its turn: the latest earlier image of this
        batch that swapped into the same slot, else the stored image. Each slot ends up holding the
        last image of the batch that swapped into it.
        """
        assert self.images is not None
        n = new.shape[0]
        order = torch.arange(n, device=new.device)
        # same[j, i]: images i < j both swap, into the same slot.
        same = swap[:, None] & swap[None, :] & (slot[:, None] == slot[None, :]) & (order[None, :] < order[:, None])
        earlier = (same * order[None, :]).amax(dim=1)  # the latest such i (0 where there is none)
        held = torch.where(same.any(dim=1)[:, None, None, None], new[earlier], self.images[slot])
        out = torch.where(swap[:, None, None, None], held, new)
        last = swap & ~same.any(dim=0)  # no later image of the batch swaps into the same slot
        # final[j, i]: image i is the last one of the batch to swap into image j's slot (at most one i).
        final = last[None, :] & (slot[None, :] == slot[:, None])
        value = torch.where(final.any(dim=1)[:, None, None, None], new[(final * order[None, :]).sum(dim=1)],
                            self.images[slot])
        # Only the n drawn slots are written; all writes to one slot carry the same value, so the
        # order of the duplicate writes does not matter (deterministic on every device).
        self.images[slot] = value
        return out

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """{"count": int, "images": (size, C, H, W) CPU float32 tensor or None}; copies to the host."""
        images = None if self.images is None else self.images[: self.count].cpu().clone()
        return {"size": self.size, "count": self.count, "images": images}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict`. Every size is checked against this pool's own size and the images held, so
        a damaged state (an empty tensor of a forged shape, a count beyond the pool) cannot ask for memory.

        Raises:
            ValueError: the state does not fit this pool.
        """
        if int(state["size"]) != self.size:
            raise ValueError(f"the saved image pool has size {state['size']}, this one {self.size}")
        count, images = state["count"], state["images"]
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= self.size:
            raise ValueError(f"the saved image pool's count must be an integer from 0 to {self.size}, got "
                             f"{count!r:.40}")
        if images is not None and (not isinstance(images, torch.Tensor) or images.dim() != 4
                                   or images.shape[0] != count):
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"the saved image pool holds {shape}, not {count} images (N, C, H, W)")
        self.count = count
        if images is None or count == 0:  # nothing held: the first query allocates the pool at its images' size
            self.images = None
            return
        # The slots past the fill count are never read before they are written: zeros.
        self.images = images.new_zeros((self.size, *images.shape[1:]))
        self.images[: self.count] = images


def pools_state(pools: dict[str, ImagePool]) -> dict[str, Any]:
    """A method's `extra_state` for its named pools: {"pools": {name: state}}, or {} when every pool is
    of size 0 (so checkpoints of methods without a pool stay as they were)."""
    if not any(p.size for p in pools.values()):
        return {}
    return {"pools": {name: pool.state_dict() for name, pool in pools.items()}}


def load_pools_state(pools: dict[str, ImagePool], state: dict[str, Any]) -> None:
    """Restore `pools_state`; {} (a checkpoint without pool state) leaves the pools empty."""
    saved = state.get("pools", {})
    unknown = set(saved) - set(pools)
    if unknown or set(state) - {"pools"}:
        raise ValueError(f"unexpected method state {sorted(set(state) - {'pools'} | unknown)}; pools: {sorted(pools)}")
    for name, pool in pools.items():
        if name in saved:
            pool.load_state_dict(saved[name])


def check_pool_size(pool_size: int, data: DataConfig) -> None:
    """A pool stacks images, so they must all have one size: a cropping data.preprocess."""
    if pool_size > 0 and not data.crops:
        raise ConfigError(
            f"method.pool_size {pool_size} needs images of one size, but data.preprocess {data.preprocess!r} keeps "
            "each image's own size; use a cropping mode such as resize_and_crop, or method.pool_size=0"
        )


class PooledMethod(TranslationMethod):
    """A method whose discriminators see image pools: ``self.pools`` (name -> ImagePool, set by the
    sub-class's constructor) is its non-network state, saved in and restored from checkpoints."""

    pools: dict[str, ImagePool]

    def extra_state(self) -> dict[str, Any]:
        return pools_state(self.pools)

    def load_extra_state(self, state: dict[str, Any]) -> None:
        load_pools_state(self.pools, state)
