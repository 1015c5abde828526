"""srunit.methods.pool: the image pool against a one-image-at-a-time simulation, its checkpoint state,
and (on a GPU) a query without host-device syncs."""

from __future__ import annotations

import io

import pytest
import torch

from srunit.methods.pool import ImagePool, load_pools_state, pools_state


class ListPool:
    """The CycleGAN pool written the plain way: a Python list, one image at a time, given decisions."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.stored: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, decisions: list[tuple[bool, int]]) -> torch.Tensor:
        """decisions: (swap, slot) for each image that meets a full pool, in order."""
        out, k = [], 0
        for image in images:
            if len(self.stored) < self.size:
                self.stored.append(image.clone())
                out.append(image)
                continue
            swap, slot = decisions[k]
            k += 1
            if swap:
                out.append(self.stored[slot])
                self.stored[slot] = image.clone()
            else:
                out.append(image)
        assert k == len(decisions)
        return torch.stack(out)


def _images(step: int, n: int) -> torch.Tensor:
    """n distinct (1, 2, 2) images; image i of step s is filled with 100 s + i."""
    return (100.0 * step + torch.arange(n, dtype=torch.float32))[:, None, None, None].expand(n, 1, 2, 2).clone()


def _recording(pool: ImagePool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Wrap the pool's draws so the test sees them; returns the list they are appended to."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    draw = pool._draw

    def spy(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        swap, slot = draw(n, device)
        seen.append((swap.clone(), slot.clone()))
        return swap, slot

    pool._draw = spy  # type: ignore[method-assign]
    return seen


def test_pool_matches_the_one_image_at_a_time_simulation_with_forced_collisions() -> None:
    """Fixed decisions that make several images of one batch swap into the same slot."""
    pool, ref = ImagePool(3), ListPool(3)
    plans = [  # per query: (batch size, decisions for the images that meet a full pool)
        (2, []),  # fills slots 0, 1
        (3, [(True, 0), (True, 0)]),  # fills slot 2, then two swaps into slot 0: the second returns the first
        (4, [(True, 2), (False, 2), (True, 2), (True, 1)]),
        (3, [(False, 0), (False, 1), (False, 2)]),
        (5, [(True, 1), (True, 0), (True, 1), (True, 1), (True, 0)]),
    ]
    for step, (n, decisions) in enumerate(plans):
        pool._draw = lambda m, device, d=decisions: (  # type: ignore[method-assign]
            torch.tensor([s for s, _ in d[-m:]], dtype=torch.bool), torch.tensor([t for _, t in d[-m:]]))
        images = _images(step, n)
        out = pool.query(images)
        expected = ref.query(images, decisions)
        assert torch.equal(out, expected), step
        assert pool.count == len(ref.stored)
        assert torch.equal(pool.images[: pool.count], torch.stack(ref.stored)), step


def test_pool_with_its_own_draws_matches_the_simulation_and_swaps_about_half() -> None:
    torch.manual_seed(0)
    pool, ref = ImagePool(5), ListPool(5)
    draws = _recording(pool)
    swapped = 0
    for step, n in enumerate([2, 2, 3, 4, 4, 1, 4, 4, 4, 4] * 5):
        images = _images(step, n)
        before = len(draws)
        out = pool.query(images)
        decisions = [(bool(s), int(t)) for new in draws[before:] for s, t in zip(*new)]
        assert torch.equal(out, ref.query(images, decisions)), step
        swapped += sum(s for s, _ in decisions)
    total = sum(int(s.numel()) for s, _ in draws)
    assert total == sum([2, 2, 3, 4, 4, 1, 4, 4, 4, 4] * 5) - 5  # every image after the first five drew
    assert 0.35 < swapped / total < 0.65
    assert all(int(t.min()) >= 0 and int(t.max()) < 5 for _, t in draws)


def test_pool_of_size_zero_returns_the_input_and_keeps_no_state() -> None:
    pool = ImagePool(0)
    x = torch.rand(2, 3, 4, 4, requires_grad=True)
    out = pool.query(x)
    assert torch.equal(out, x) and not out.requires_grad
    assert pool.images is None and pools_state({"B": pool}) == {}


def test_pool_keeps_the_dtype_and_refuses_another_image_size() -> None:
    pool = ImagePool(2)
    out = pool.query(torch.rand(3, 3, 4, 4).to(torch.bfloat16))
    assert out.dtype == torch.bfloat16 and pool.images.dtype == torch.float32
    with pytest.raises(ValueError, match=r"images of one size"):
        pool.query(torch.rand(1, 3, 8, 8))


def test_pool_state_round_trips_through_a_checkpoint_file() -> None:
    torch.manual_seed(0)
    pools = {"B": ImagePool(4), "A": ImagePool(4)}
    for step in range(3):
        for name, pool in pools.items():
            pool.query(_images(step, 2) + (0.5 if name == "A" else 0.0))
    state = pools_state(pools)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored = {"B": ImagePool(4), "A": ImagePool(4)}
    load_pools_state(restored, torch.load(buffer, weights_only=True))
    for name in pools:
        assert restored[name].count == pools[name].count == 4
        assert torch.equal(restored[name].images, pools[name].images)
    # The same draws give the same answers and the same pools afterwards.
    rng = torch.get_rng_state()
    a = [pools[n].query(_images(9, 3)) for n in pools]
    torch.set_rng_state(rng)
    b = [restored[n].query(_images(9, 3)) for n in restored]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(torch.equal(pools[n].images, restored[n].images) for n in pools)
    # A partly filled pool saves only its filled slots; a checkpoint without pool state leaves pools empty.
    partial = {"B": ImagePool(4)}
    partial["B"].query(_images(0, 1))
    assert pools_state(partial)["pools"]["B"]["images"].shape[0] == 1
    empty = {"B": ImagePool(4)}
    load_pools_state(empty, {})
    assert empty["B"].count == 0 and empty["B"].images is None
    with pytest.raises(ValueError, match="size 4"):
        ImagePool(3).load_state_dict(state["pools"]["B"])


@pytest.mark.gpu
def test_pool_query_makes_no_host_device_sync_on_cuda() -> None:
    pool = ImagePool(3)
    device = torch.device("cuda")
    pool.query(torch.rand(2, 3, 8, 8, device=device))  # allocation and the first fill
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(4):  # fills the last slot, then swaps
            pool.query(torch.rand(2, 3, 8, 8, device=device))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert pool.count == 3
