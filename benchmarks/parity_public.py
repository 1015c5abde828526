"""Running the authors' public code beside ours: what the public runners of the parity harness share.

Each public repository is imported from a checkout the user names (never from this project, never
changed on disk). Three of them are old enough that parts of them cannot run on a current torch on a
CPU as they are; each runner does the least in memory that lets them run and says so in its
docstring. The helpers here:

- `PublicCode`: the modules of one repository under their own top-level names (SRUNIT and GcGAN
  both have packages ``models``, ``options`` and ``util``): each repository's modules are swapped
  into ``sys.modules`` only while its code runs, so several can run in one process.
- `CpuTorch`: stands in for the ``torch`` of a public module that moves every new tensor to the GPU
  (``torch.randn(...).cuda(gpu)``): the tensors it makes ignore ``.cuda()`` and stay on the CPU.
- `stub_torchvision`: the public image pipelines import torchvision, which the harness does not use
  and which does not import beside the CPU torch wheel.
"""

from __future__ import annotations

import contextlib
import io
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The public code prints options, network sizes and learning rates: keep them off the table."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def stub_torchvision() -> None:
    """Where torchvision cannot be imported (the CPU torch wheel), empty modules stand in: only the
    public image pipelines import it, and the harness makes its own batches."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - any failure to import means: stand in
        for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]  # type: ignore[attr-defined]
        sys.modules["torchvision.transforms"].functional = sys.modules["torchvision.transforms.functional"]  # type: ignore[attr-defined]


class PublicCode:
    """One public repository's modules, importable by their own names while `active`.

    ``top``: the repository's top-level module and package names. Outside `active` none of them is in
    ``sys.modules`` (another repository's may be); the imported modules keep working, as they hold
    their own references, and `module` finds them.
    """

    def __init__(self, root: Path, top: tuple[str, ...]) -> None:
        self.root = root
        self.top = top
        self.modules: dict[str, types.ModuleType] = {}

    def _own(self, name: str) -> bool:
        return name.split(".")[0] in self.top

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        others = {k: sys.modules.pop(k) for k in list(sys.modules) if self._own(k)}
        sys.modules.update(self.modules)
        sys.path.insert(0, str(self.root))
        try:
            yield
        finally:
            sys.path.remove(str(self.root))
            self.modules = {k: sys.modules.pop(k) for k in list(sys.modules) if self._own(k)}
            sys.modules.update(others)

    def module(self, name: str) -> types.ModuleType:
        return self.modules[name]


class CpuTensor(torch.Tensor):
    """A tensor whose ``.cuda(...)`` returns it, as a plain tensor on the CPU."""

    def cuda(self, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        return self.as_subclass(torch.Tensor)


class CpuTorch:
    """Stands in for the `torch` of a public module: the tensors that ``randn``, ``zeros``, ``ones``,
    ``zeros_like``, ``ones_like`` and ``arange`` make ignore ``.cuda()``; ``randn`` may come from the
    harness (``randn``: a `parity_core.TorchDraws`). Everything else is torch's."""

    MAKERS = ("randn", "zeros", "ones", "zeros_like", "ones_like", "arange")

    def __init__(self, randn: Any = None) -> None:
        self._randn = randn

    def __getattr__(self, name: str) -> Any:
        value = getattr(torch, name)
        if name not in self.MAKERS:
            return value
        if name == "randn" and self._randn is not None:
            value = self._randn.randn

        def make(*args: Any, **kwargs: Any) -> torch.Tensor:
            return value(*args, **kwargs).as_subclass(CpuTensor)

        return make


class PoolDraws:
    """Stands in for the `random` module of a public image pool (the CycleGAN code's, which SRUNIT and GcGAN
    keep), for the pool named ``current``: its decisions come from the harness (``draws``: a
    `parity_core.Draws`), as our pool's do."""

    def __init__(self, draws: Any) -> None:
        self._draws = draws
        self.current = ""
        self.size = 0
        self._slot: int | None = None

    def uniform(self, a: float, b: float) -> float:
        swap, self._slot = self._draws.pool(self.current, self.size)
        return 0.75 if swap else 0.25  # the pool swaps when the draw is above 0.5

    def randint(self, a: int, b: int) -> int:
        assert (a, b) == (0, self.size - 1) and self._slot is not None
        slot, self._slot = self._slot, None
        return slot


@contextlib.contextmanager
def replaced(targets: list[tuple[Any, str, Any]]) -> Iterator[None]:
    """Set each (owner, name) to its value while the block runs."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in targets]
    for owner, name, value in targets:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)
