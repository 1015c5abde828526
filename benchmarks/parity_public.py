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
- `PublicWeights`: what every public runner does with weights: ours copied into the public networks
  (nudged by one unit in the last place for the control run) and theirs read back under our names.
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
from torch import nn


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


class PublicWeights:
    """Our networks' weights into a public model's and back, under our key names (a base of the public runners).

    A runner gives ``network(ours)``, the public module of our network ``ours`` ("G", "D_A", ...), and
    ``key_map(name, net)``, our state-dict keys of ``net`` -> the public module's; ``check_loaded`` may refuse
    what `load` is about to copy (the SRUNIT repository's fixed blur filters must already agree).
    """

    def network(self, ours: str) -> nn.Module:
        raise NotImplementedError

    def key_map(self, name: str, net: nn.Module) -> dict[str, str]:
        raise NotImplementedError

    def check_loaded(self, name: str, state: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
        """Called with the state about to be loaded into network ``name`` and the public one's own; default: none."""

    def load(self, ours: dict[str, nn.Module], nudge: bool = False) -> None:
        """Copy our networks' weights into the public ones; with ``nudge`` every weight then moves up by one
        unit in the last place (the control run)."""
        for name, net in ours.items():
            keys = self.key_map(name, net)
            target = self.network(name)
            state = {keys[k]: v for k, v in net.state_dict().items()}
            self.check_loaded(name, state, target.state_dict())
            target.load_state_dict(state, strict=True)
            if nudge:
                with torch.no_grad():
                    for param in target.parameters():
                        param.copy_(torch.nextafter(param, torch.full_like(param, float("inf"))))

    def state(self, ours: dict[str, nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
        """The public weights under our names."""
        out = {}
        for name, net in ours.items():
            keys = self.key_map(name, net)
            theirs = self.network(name).state_dict()
            out[name] = {k: theirs[keys[k]].detach().clone() for k, _ in net.named_parameters()}
        return out


if __name__ == "__main__":  # a module of the harness, not a script: running it did nothing, silently
    raise SystemExit(f"{__file__} is a module of the parity harness; run benchmarks/parity_vs_public.py (--help)")
